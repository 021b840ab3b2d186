/* config_plugins.c -- the plugin part of a configuration: the `plugins`
 * list of instances, a copy of each instance's settings for the plugin
 * (scalars expanded, positions kept), the names a route lists and their
 * resolution once every instance is read, and the plugins' own checks,
 * which the daemon hands in (config/ never loads a shared object).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "core/error.h"

void eb_config_node_free(struct eb_config_node *n) {
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++) {
        eb_config_node_free(n->kids[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->kids);
    free(n->keys);
    free(n->key_pos);
    free(n->str);
    free(n->path);
    free(n);
}

/* A copy of the YAML subtree n for a plugin: scalars expanded, positions
 * and paths kept. NULL after reporting why (or out of memory). Aliases are
 * copied (the document's expanded size is already bounded). */
static struct eb_config_node *copy_settings(struct ctx *c, const struct ynode *n,
                                            const char *path, unsigned depth) {
    struct eb_config_node *out = calloc(1, sizeof(*out));
    if (!out || !(out->path = strdup(path))) {
        free(out);
        c->oom = c->stop = true;
        return NULL;
    }
    out->pos.line = n->line;
    out->pos.col = n->col;
    if (n->type == Y_SCALAR) {
        out->type = EB_NODE_SCALAR;
        if (!(out->str = eb_config_scalar_text(c, n, path, NULL)))
            goto err_free_node;
        if (eb_log_is_secret_name(path + strcspn(path, ".") + 1))
            eb_config_add_secret(c, out->str);
        return out;
    }
    out->type = n->type == Y_SEQ ? EB_NODE_LIST : EB_NODE_MAP;
    size_t count = n->type == Y_SEQ ? n->nkids : n->nkids / 2;
    out->kids = calloc(count ? count : 1, sizeof(*out->kids));
    if (n->type == Y_MAP) {
        out->keys = calloc(count ? count : 1, sizeof(*out->keys));
        out->key_pos = calloc(count ? count : 1, sizeof(*out->key_pos));
    }
    if (!out->kids || (n->type == Y_MAP && (!out->keys || !out->key_pos))) {
        c->oom = c->stop = true;
        goto err_free_node;
    }
    for (size_t i = 0; i < count && !c->stop; i++) {
        char sub[256];
        const struct ynode *v = n->type == Y_SEQ ? n->kids[i] : n->kids[2 * i + 1];
        if (n->type == Y_SEQ) {
            snprintf(sub, sizeof(sub), "%.200s[%zu]", path, i);
        } else {
            const struct ynode *kn = n->kids[2 * i];
            if (kn->type != Y_SCALAR || memchr(kn->str, '\0', kn->len)) {
                err_at(c, kn, "invalid key in %s: found %s; expected a key name", path,
                       eb_config_kind_name(kn));
                goto err_free_node;
            }
            for (size_t j = 0; j < i; j++) {
                if (strcmp(out->keys[j], kn->str) == 0) {
                    err_at(c, kn, "duplicate key '%s' in %s; expected each key once", kn->str,
                           path);
                    goto err_free_node;
                }
            }
            snprintf(sub, sizeof(sub), "%.160s.%.80s", path, kn->str);
            if (!(out->keys[i] = eb_config_xstrdup(c, kn->str)))
                goto err_free_node;
            out->key_pos[i] = (struct eb_srcpos){.line = kn->line, .col = kn->col};
        }
        out->nkids = i + 1;
        if (!(out->kids[i] = copy_settings(c, v, sub, depth + 1)))
            goto err_free_node;
    }
    if (c->stop)
        goto err_free_node;
    return out;

err_free_node:
    eb_config_node_free(out);
    return NULL;
}

void eb_config_convert_settings(struct ctx *c, const struct ynode *n, const char *what,
                                struct eb_config_node **field) {
    if (n->type != Y_MAP) {
        err_at(c, n, "invalid %s: found %s; expected a mapping of the plugin's settings", what,
               eb_config_kind_name(n));
        return;
    }
    struct eb_config_node *s = copy_settings(c, n, what, 0);
    if (!s)
        return;
    eb_config_node_free(*field);
    *field = s;
}

/* A route's `plugins: [a, b]`: names only; resolved once every instance is
 * read (eb_config_resolve_plugin_refs()). */
void eb_config_convert_plugin_refs(struct ctx *c, const struct ynode *n, const char *what,
                                   struct eb_config_route *r) {
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, eb_config_kind_name(n),
               eb_config_schema_type_expected(EB_CT_PLUGIN_REFS));
        return;
    }
    char **names = calloc(n->nkids ? n->nkids : 1, sizeof(*names));
    struct eb_srcpos *pos = calloc(n->nkids ? n->nkids : 1, sizeof(*pos));
    size_t *idx = calloc(n->nkids ? n->nkids : 1, sizeof(*idx));
    size_t got = 0;
    if (!names || !pos || !idx) {
        c->oom = c->stop = true;
        goto err_free;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        const struct ynode *it = n->kids[i];
        char *s = eb_config_scalar_text(c, it, what, NULL);
        if (!s)
            goto err_free;
        for (size_t j = 0; j < got; j++) {
            if (strcmp(names[j], s) == 0) {
                err_at(c, it, "invalid %s: plugin '%s' is listed twice; expected each once",
                       what, s);
                free(s);
                goto err_free;
            }
        }
        names[got] = s;
        pos[got].line = it->line;
        pos[got].col = it->col;
        got++;
    }
    for (size_t i = 0; i < r->nplugins; i++)
        free(r->plugins[i]);
    free(r->plugins);
    free(r->plugin_pos);
    free(r->plugin_idx);
    r->plugins = names;
    r->plugin_pos = pos;
    r->plugin_idx = idx;
    r->nplugins = got;
    return;

err_free:
    for (size_t i = 0; i < got; i++)
        free(names[i]);
    free(names);
    free(pos);
    free(idx);
}

void eb_config_convert_plugins(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                               const char *what) {
    struct eb_config *cfg = c->cfg;
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, eb_config_kind_name(n),
               eb_config_schema_type_expected(k->type));
        return;
    }
    if (cfg->plugins)
        return; /* given twice: reported as a duplicate key */
    cfg->plugins = calloc(n->nkids ? n->nkids : 1, sizeof(*cfg->plugins));
    c->plugin_maps = calloc(n->nkids ? n->nkids : 1, sizeof(*c->plugin_maps));
    c->plugin_names = calloc(n->nkids ? n->nkids : 1, sizeof(*c->plugin_names));
    if (!cfg->plugins || !c->plugin_maps || !c->plugin_names) {
        c->oom = c->stop = true;
        return;
    }
    cfg->nplugins = n->nkids;
    for (size_t i = 0; i < n->nkids && !c->stop; i++) {
        const struct ynode *item = n->kids[i];
        struct eb_config_plugin *pl = &cfg->plugins[i];
        char path[160];
        struct seen s;
        c->plugin_maps[i] = item;
        if (!eb_config_list_item(c, item, what, i, "a mapping with name and path", path,
                                 sizeof(path), &pl->pos))
            continue;
        eb_config_walk_map(c, item, k->sub, pl, path, &s);
        c->plugin_names[i] = eb_config_seen_get(&s, "name");
        const struct ynode *pn = eb_config_seen_get(&s, "path");
        if (pn) {
            pl->path_pos.line = pn->line;
            pl->path_pos.col = pn->col;
        }
    }
}

/* Instance names are unique, and every name a route lists is one. */
void eb_config_resolve_plugin_refs(struct ctx *c) {
    struct eb_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nplugins && !c->stop; i++) {
        for (size_t j = 0; j < i && cfg->plugins[i].name; j++) {
            if (cfg->plugins[j].name && strcmp(cfg->plugins[i].name, cfg->plugins[j].name) == 0) {
                const struct ynode *at = c->plugin_names[i] ? c->plugin_names[i] : c->plugin_maps[i];
                err_at(c, at,
                       "duplicate plugin instance name '%s' (first at line %u); expected a "
                       "unique name per instance",
                       cfg->plugins[i].name, cfg->plugins[j].pos.line);
                break;
            }
        }
    }
    const char **names = calloc(cfg->nplugins ? cfg->nplugins : 1, sizeof(*names));
    if (!names) {
        c->oom = c->stop = true;
        return;
    }
    for (size_t j = 0; j < cfg->nplugins; j++)
        names[j] = cfg->plugins[j].name ? cfg->plugins[j].name : "";
    for (size_t r = 0; r < cfg->nroutes && !c->stop; r++) {
        struct eb_config_route *rt = &cfg->routes[r];
        for (size_t i = 0; i < rt->nplugins; i++) {
            size_t j = 0;
            while (j < cfg->nplugins && strcmp(names[j], rt->plugins[i]) != 0)
                j++;
            rt->plugin_idx[i] = j;
            if (j < cfg->nplugins)
                continue;
            const char *sug = eb_config_schema_nearest(rt->plugins[i], names, cfg->nplugins);
            char v[96];
            snprintf(v, sizeof(v), "%.80s", rt->plugins[i]);
            eb_config_errorf(
                c, rt->plugin_pos[i].line, rt->plugin_pos[i].col,
                "unknown plugin '%s' in routes[%zu].plugins; expected the name of an instance "
                "under plugins%s%s%s",
                v, r, sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
        }
    }
    free(names);
}

static void report_hook(void *rctx, struct eb_srcpos pos, const char *msg) {
    struct ctx *c = rctx;
    eb_config_errorf(c, pos.line ? pos.line : 1, pos.col ? pos.col : 1, "%s", msg);
}

/* The plugins' own checks (loading, ABI, settings), handed in by the
 * daemon: config/ itself never loads a shared object. */
void eb_config_check_plugins(struct ctx *c) {
    if (!c->cfg->nplugins || !c->checks || !c->checks->plugins || c->nerr || c->stop)
        return;
    int rc = c->checks->plugins(c->cfg, report_hook, c, c->checks->plugins_opaque);
    if (rc == EB_ENOMEM)
        c->oom = c->stop = true;
    else if (rc != 0 && !c->nerr)
        eb_config_errorf(c, 1, 1, "the plugins could not be checked; expected loadable plugins");
}
