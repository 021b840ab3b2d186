// Decode.java MESSAGES.json -- feed Kafka messages to the Java CloudEvents
// SDK's Kafka binding (io.cloudevents:cloudevents-kafka: CloudEventDeserializer,
// what a KafkaConsumer<?, CloudEvent> calls for each record, with
// cloudevents-json-jackson for structured mode) and print, one JSON line each,
// what it made of them. Run by tests/sdk/test_sdk.py as a single-file source
// program on the class path scripts/fetch-sdks.sh fetched; nothing here
// judges the result.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.cloudevents.CloudEvent;
import io.cloudevents.kafka.CloudEventDeserializer;
import java.io.File;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Base64;
import java.util.Map;
import org.apache.kafka.common.header.internals.RecordHeaders;

public class Decode {
    static final ObjectMapper JSON = new ObjectMapper();

    static byte[] b64(JsonNode n) {
        return n == null || n.isNull() ? null : Base64.getDecoder().decode(n.asText());
    }

    static ObjectNode describe(CloudEvent ev) {
        ObjectNode o = JSON.createObjectNode();
        o.put("specversion", ev.getSpecVersion().toString());
        o.put("id", ev.getId());
        o.put("source", ev.getSource() == null ? null : ev.getSource().toString());
        o.put("type", ev.getType());
        o.put("subject", ev.getSubject());
        o.put("datacontenttype", ev.getDataContentType());
        OffsetDateTime t = ev.getTime();
        o.put("time", t == null ? null : t.toString());
        if (t == null) {
            o.putNull("time_us");
            o.putNull("time_utc");
        } else {
            o.put("time_us", t.toEpochSecond() * 1_000_000L + t.getNano() / 1000);
            o.put("time_utc", t.getOffset().equals(ZoneOffset.UTC));
        }
        ObjectNode data = o.putObject("data");
        if (ev.getData() == null) {
            o.putNull("data");
        } else {
            data.put("$bytes_b64", Base64.getEncoder().encodeToString(ev.getData().toBytes()));
            data.put("$class", ev.getData().getClass().getSimpleName());
        }
        ObjectNode ext = o.putObject("extensions");
        for (String name : ev.getExtensionNames()) {
            ext.put(name, String.valueOf(ev.getExtension(name)));
        }
        return o;
    }

    public static void main(String[] args) throws Exception {
        JsonNode messages = JSON.readTree(new File(args[0]));
        ObjectNode head = JSON.createObjectNode();
        head.put("sdk", "java");
        head.put("package", "io.cloudevents:cloudevents-kafka");
        // The jar's manifest has no version: take it from the file name.
        String jar = CloudEventDeserializer.class.getProtectionDomain().getCodeSource()
                         .getLocation().getPath();
        head.put("version", jar.replaceAll(".*/cloudevents-kafka-(.*)\\.jar$", "$1"));
        head.put("binding", "CloudEventDeserializer.deserialize(topic, headers, value)");
        System.out.println(JSON.writeValueAsString(head));
        try (CloudEventDeserializer des = new CloudEventDeserializer()) {
            des.configure(Map.of(), false);
            int i = 0;
            for (JsonNode m : messages) {
                RecordHeaders headers = new RecordHeaders();
                for (JsonNode h : m.get("headers")) {
                    headers.add(h.get(0).asText(), b64(h.get(1)));
                }
                ObjectNode out = JSON.createObjectNode();
                out.put("i", i++);
                try {
                    CloudEvent ev = des.deserialize(m.get("topic").asText(), headers, b64(m.get("value")));
                    out.put("ok", true);
                    out.set("event", describe(ev));
                } catch (RuntimeException e) {
                    out.put("ok", false);
                    out.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
                }
                System.out.println(JSON.writeValueAsString(out));
            }
        }
    }
}
