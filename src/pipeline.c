/* pipeline.c -- STUB until the pipeline lands. */
#include "pipeline.h"
