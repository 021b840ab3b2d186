/* config_walk.c -- step 2 of a load: each mapping is checked against its
 * schema table (config_schema.c: unknown keys with the nearest one
 * suggested, duplicate and required keys, defaults parsed as YAML) and
 * each value handed to its converter; a section's own rules run once the
 * section is read (config_checks.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* The parsed default of row k (cached per load). */
static const struct ynode *default_node(struct ctx *c, const struct eb_config_key *k) {
    for (size_t i = 0; i < c->ndefs; i++) {
        if (c->defs[i].row == k)
            return c->defs[i].node;
    }
    struct ynode *n = eb_config_load_yaml(c, k->def, strlen(k->def));
    if (n && c->ndefs < sizeof(c->defs) / sizeof(c->defs[0])) {
        c->defs[c->ndefs].row = k;
        c->defs[c->ndefs++].node = n;
    }
    return n;
}

static void convert_routes(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                           const char *what) {
    struct eb_config *cfg = c->cfg;
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, eb_config_kind_name(n),
               eb_config_schema_type_expected(k->type));
        return;
    }
    if (cfg->routes)
        return; /* `routes` given twice is reported as a duplicate key */
    cfg->routes = calloc(n->nkids ? n->nkids : 1, sizeof(*cfg->routes));
    c->routes = calloc(n->nkids ? n->nkids : 1, sizeof(*c->routes));
    if (!cfg->routes || !c->routes) {
        c->oom = c->stop = true;
        return;
    }
    cfg->nroutes = n->nkids;
    for (size_t i = 0; i < n->nkids && !c->stop; i++) {
        const struct ynode *item = n->kids[i];
        struct eb_config_route *r = &cfg->routes[i];
        char path[160];
        struct seen s;
        c->routes[i].map = item;
        if (!eb_config_list_item(c, item, what, i, "a mapping with name, match and topic", path,
                                 sizeof(path), &r->pos))
            continue;
        eb_config_walk_map(c, item, k->sub, r, path, &s);
        eb_config_check_route(c, r, &s, path);
    }
}

const struct ynode *eb_config_seen_get(const struct seen *s, const char *key) {
    for (size_t i = 0; s->table[i].key; i++) {
        if (strcmp(s->table[i].key, key) == 0)
            return eb_config_is_absent(s->val[i]) ? NULL : s->val[i];
    }
    return NULL;
}

/* Item i of a list of mappings (routes, plugins): its path for messages
 * ("routes[3]") into path, its position into *pos; false after reporting
 * when it is not a mapping. */
bool eb_config_list_item(struct ctx *c, const struct ynode *item, const char *what, size_t i,
                         const char *expect, char *path, size_t path_size, struct eb_srcpos *pos) {
    snprintf(path, path_size, "%.100s[%zu]", what, i);
    pos->line = item->line;
    pos->col = item->col;
    if (item->type == Y_MAP)
        return true;
    err_at(c, item, "invalid %s: found %s; expected %s", path, eb_config_kind_name(item), expect);
    return false;
}

/* Convert one value (n is never null here) of row k into base. */
static void set_value(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                      void *base, const char *path) {
    void *field = (char *)base + k->offset;
    char what[192];
    eb_config_child_path(what, sizeof(what), path, k->key);
    switch (k->type) {
    case EB_CT_SECTION: {
        struct seen s;
        if (n && n->type != Y_MAP) {
            err_at(c, n, "invalid %s: found %s; expected a mapping with the keys of %s", what,
                   eb_config_kind_name(n), what);
            return;
        }
        eb_config_walk_map(c, n, k->sub, base, what, &s);
        if (strcmp(what, "redis") == 0 && !c->stop)
            eb_config_check_redis(c, &s);
        else if (strcmp(what, "ledger") == 0 && !c->stop)
            eb_config_check_ledger(c, &s);
        else if (strcmp(what, "coordination") == 0 && !c->stop)
            eb_config_check_coordination(c, &s);
        return;
    }
    case EB_CT_ROUTES:
        convert_routes(c, k, n, what);
        return;
    case EB_CT_UNROUTED: {
        struct seen s;
        if (n->type == Y_MAP) {
            eb_config_walk_map(c, n, k->sub, base, what, &s);
            c->cfg->unrouted_drop = false;
            return;
        }
        char *v = eb_config_scalar_text(c, n, what, NULL);
        if (!v)
            return;
        if (strcmp(v, "drop") == 0) {
            c->cfg->unrouted_drop = true;
            eb_config_set_str(&c->cfg->unrouted_topic, NULL);
        } else {
            eb_config_bad_value(c, n, what, k, "not drop");
        }
        free(v);
        return;
    }
    case EB_CT_REDIS_URL: {
        char *url = eb_config_scalar_text(c, n, what, NULL);
        if (!url)
            return;
        eb_config_convert_url(
            c, n, what, url,
            (struct eb_config_redis *)((char *)field - offsetof(struct eb_config_redis, url)));
        free(url);
        return;
    }
    case EB_CT_DATABASES:
        eb_config_convert_databases(
            c, n, what,
            (struct eb_config_redis *)((char *)field -
                                       offsetof(struct eb_config_redis, all_databases)));
        return;
    case EB_CT_CLIENT_PROPS:
        eb_config_convert_client(
            c, n, what,
            (struct eb_config_kafka *)((char *)field - offsetof(struct eb_config_kafka, client)));
        return;
    case EB_CT_HEADERS:
        eb_config_convert_headers(
            c, n, what,
            (struct eb_config_route *)((char *)field - offsetof(struct eb_config_route, headers)));
        return;
    case EB_CT_EVENTS:
        eb_config_convert_events(c, n, what, field);
        return;
    case EB_CT_PLUGINS:
        eb_config_convert_plugins(c, k, n, what);
        return;
    case EB_CT_SETTINGS:
        eb_config_convert_settings(c, n, what, field);
        return;
    case EB_CT_PLUGIN_REFS:
        eb_config_convert_plugin_refs(
            c, n, what,
            (struct eb_config_route *)((char *)field - offsetof(struct eb_config_route, plugins)));
        return;
    default:
        eb_config_convert_scalar(c, k, n, field, what);
    }
}

/* Check one mapping against its table and convert its values; apply
 * defaults to what it lacks. map may be NULL (an absent optional section:
 * defaults only). */
void eb_config_walk_map(struct ctx *c, const struct ynode *map, const struct eb_config_key *table,
                        void *base, const char *path, struct seen *s) {
    char where[200];
    snprintf(where, sizeof(where), "%s%.180s", *path ? "in " : "at the top level", path);
    memset(s, 0, sizeof(*s));
    s->table = table;
    s->map = map;
    for (size_t i = 0; map && i + 1 < map->nkids && !c->stop; i += 2) {
        const struct ynode *kn = map->kids[i], *vn = map->kids[i + 1];
        if (kn->type != Y_SCALAR) {
            err_at(c, kn, "invalid key %s: found %s; expected a key name", where,
                   eb_config_kind_name(kn));
            continue;
        }
        const struct eb_config_key *row = eb_config_schema_find(table, kn->str);
        if (!row) {
            char keys[512] = "", v[96];
            size_t w = 0;
            for (const struct eb_config_key *k = table; k->key && w < sizeof(keys); k++)
                w += (size_t)snprintf(keys + w, sizeof(keys) - w, "%s%s", k == table ? "" : ", ",
                                      k->key);
            const char *sug = eb_config_schema_suggest(table, kn->str);
            eb_config_shown(kn, v, sizeof(v));
            if (sug)
                err_at(c, kn, "unknown key '%s' %s; expected one of %s; did you mean '%s'?", v,
                       where, keys, sug);
            else
                err_at(c, kn, "unknown key '%s' %s; expected one of %s", v, where, keys);
            continue;
        }
        size_t idx = (size_t)(row - table);
        if (s->key[idx]) {
            err_at(c, kn, "duplicate key '%s' %s (first at line %u); expected each key once",
                   row->key, where, s->key[idx]->line);
            continue;
        }
        s->key[idx] = kn;
        s->val[idx] = vn;
        if (!eb_config_is_absent(vn))
            set_value(c, row, vn, base, path);
    }
    for (size_t idx = 0; table[idx].key && !c->stop; idx++) {
        const struct eb_config_key *row = &table[idx];
        if (!eb_config_is_absent(s->val[idx]))
            continue;
        if (row->flags & EB_CK_REQUIRED) {
            char what[192];
            eb_config_child_path(what, sizeof(what), path, row->key);
            if (s->val[idx])
                err_at(c, s->val[idx], "missing value for %s; expected %s", what,
                       row->type == EB_CT_SECTION ? "a mapping"
                                                  : eb_config_schema_type_expected(row->type));
            else
                err_at(c, map, "missing %s %s; expected %s", row->key, where,
                       row->type == EB_CT_SECTION ? "a mapping"
                                                  : eb_config_schema_type_expected(row->type));
        } else if (row->def) {
            const struct ynode *d = default_node(c, row);
            if (d)
                set_value(c, row, d, base, path);
        } else if (row->type == EB_CT_SECTION) {
            set_value(c, row, NULL, base, path);
        }
    }
}
