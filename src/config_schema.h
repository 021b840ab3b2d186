/* config_schema.h -- STUB: the table of configuration keys (config work item). */
#ifndef EB_CONFIG_SCHEMA_H
#define EB_CONFIG_SCHEMA_H
#endif
