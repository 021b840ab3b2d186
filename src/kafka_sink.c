/* kafka_sink.c -- STUB until the sink lands. */
#include "kafka_sink.h"
