package dev.expirybridge.orderconsumer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.cloudevents.CloudEvent;
import io.cloudevents.core.message.MessageReader;
import io.cloudevents.kafka.KafkaMessageFactory;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.header.Headers;

/**
 * The event, checked: what the order consumer needs from an expiry-bridge
 * CloudEvent (docs/event.md), or Malformed with a reason for the dead-letter
 * topic. The official CloudEvents SDK's Kafka binding reads the message, so
 * structured (the bridge's default) and binary mode are both accepted. Every
 * check the database would make is made here, so no event can make the
 * transaction fail forever. Pure: bytes in, a value or an exception out.
 */
final class OrderEvent {
    static final String TYPE = "redis.key.expired";
    static final int EVENT_ID_MAX = 200;  // bytes; far below PostgreSQL's index key limit
    static final int DELIVERY_MAX = 32;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The message cannot be an order-timeout event; getMessage() says why. */
    static final class Malformed extends Exception {
        private static final long serialVersionUID = 1L;

        Malformed(String why) {
            super(why);
        }
    }

    final String id;
    final long orderId;
    final String delivery;

    private OrderEvent(String id, long orderId, String delivery) {
        this.id = id;
        this.orderId = orderId;
        this.delivery = delivery;
    }

    static OrderEvent parse(Headers headers, byte[] value) throws Malformed {
        if (value == null || value.length == 0) {
            throw new Malformed("empty message: no value");
        }
        CloudEvent ev;
        try {
            MessageReader reader = KafkaMessageFactory.createReader(headers, value);
            ev = reader.toEvent();
        } catch (RuntimeException e) {  // CloudEventRWException, IllegalStateException, ...
            throw new Malformed(whyNotACloudEvent(value, e));
        }
        String specversion = text(ev.getSpecVersion().toString(), "specversion", 16);
        if (!specversion.equals("1.0")) {
            throw new Malformed("specversion: expected \"1.0\", got \"" + specversion + "\"");
        }
        String type = text(ev.getType(), "type", 256);
        if (!type.equals(TYPE)) {
            throw new Malformed("type: expected \"" + TYPE + "\", got \""
                                + type.substring(0, Math.min(100, type.length())) + "\"");
        }
        if (ev.getData() == null) {
            throw new Malformed("data: missing");
        }
        JsonNode data;
        try {
            data = JSON.readTree(ev.getData().toBytes());
        } catch (Exception e) {
            throw new Malformed("data: not JSON: " + e.getMessage());
        }
        object(data, "data");
        JsonNode params = object(data.get("params"), "data.params");
        JsonNode encoded = data.get("params_base64");
        if (encoded != null && encoded.isObject() && encoded.has("order_id")) {
            throw new Malformed("data.params.order_id: not UTF-8 (see data.params_base64)");
        }
        String orderId = text(params.get("order_id"), "data.params.order_id", 64);
        if (!orderId.matches("[1-9][0-9]{0,17}")) {
            throw new Malformed("data.params.order_id: expected a positive integer of at most 18 "
                                + "digits, got \"" + orderId + "\"");
        }
        return new OrderEvent(text(ev.getId(), "id", EVENT_ID_MAX), Long.parseLong(orderId),
                              text(data.get("delivery"), "data.delivery", DELIVERY_MAX));
    }

    /** A reason for a value the SDK could not read, in the C consumer's words where they apply. */
    private static String whyNotACloudEvent(byte[] value, RuntimeException err) {
        JsonNode doc;
        try {
            doc = JSON.readTree(value);
        } catch (Exception e) {
            return "not JSON: " + e.getMessage().split("\n", 2)[0];
        }
        if (doc == null || !doc.isObject()) {
            return "expected a JSON object, got " + (doc == null ? "nothing" : doc.getNodeType()
                                                     .toString().toLowerCase());
        }
        return "not a CloudEvent: " + err.getMessage();
    }

    private static JsonNode object(JsonNode n, String path) throws Malformed {
        if (n == null || n.isMissingNode()) {
            throw new Malformed(path + ": missing");
        }
        if (!n.isObject()) {
            throw new Malformed(path + ": expected an object, got " + n.getNodeType().toString()
                                .toLowerCase());
        }
        return n;
    }

    private static String text(JsonNode n, String path, int maxBytes) throws Malformed {
        if (n == null || n.isMissingNode()) {
            throw new Malformed(path + ": missing");
        }
        if (!n.isTextual()) {
            throw new Malformed(path + ": expected a string, got " + n.getNodeType().toString()
                                .toLowerCase());
        }
        return text(n.asText(), path, maxBytes);
    }

    /** A string PostgreSQL can store: 1..maxBytes UTF-8 bytes, no NUL, no lone surrogate. */
    private static String text(String s, String path, int maxBytes) throws Malformed {
        if (s == null) {
            throw new Malformed(path + ": missing");
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isSurrogate(c) && !(Character.isHighSurrogate(c) && i + 1 < s.length()
                                              && Character.isLowSurrogate(s.charAt(++i)))) {
                throw new Malformed(path + ": not valid UTF-8");
            }
        }
        int n = s.getBytes(StandardCharsets.UTF_8).length;
        if (n < 1 || n > maxBytes || s.indexOf('\0') >= 0) {
            throw new Malformed(path + ": expected 1 to " + maxBytes + " bytes without NUL, got "
                                + n);
        }
        return s;
    }
}
