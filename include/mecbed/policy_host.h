/* mecbed: the host side of policies: the registry every policy (built-in or
 * plugin) is found in, the plugin loader, and sessions that bind a policy to
 * one model, topology and cost model. Plugins never see this header; they
 * include policy.h only. */
#ifndef MECBED_POLICY_HOST_H
#define MECBED_POLICY_HOST_H

#include <stddef.h>

#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/policy.h"
#include "mecbed/topology.h"

/* Registry. ops must stay valid while registered (static storage, or a
 * loaded plugin's). Returns 0 or -1 with err. */
int mb_policy_register(const mb_policy_ops *ops, char *err, size_t errlen);
int mb_policy_unregister(const char *name);
const mb_policy_ops *mb_policy_find(const char *name);
/* Registered policies in registration order: the built-ins first (the
 * order of policies/builtin.c's table), then loaded plugins. Help text,
 * validation and tests enumerate these instead of naming policies. */
int mb_policy_count(void);
const mb_policy_ops *mb_policy_at(int i);
/* The names of every registered policy joined by sep into buf; returns buf. */
const char *mb_policy_names(char *buf, size_t len, const char *sep);
/* Register the built-ins (policies/builtin.c's table). Idempotent. */
void mb_policy_register_builtins(void);
/* dlopen a plugin by path (contains '/' or ends in .so) or by name (found
 * as <dir>/<name>.so along the plugin path), check its ABI and register it.
 * Loading a file whose policy is already registered succeeds (nothing
 * changes). *name_out (optional) receives its name. */
int mb_policy_load(const char *path_or_name, const char **name_out, char *err, size_t errlen);

/* The registered policy called name; when there is none, the plugin
 * <name>.so from the plugin path is loaded (auto-load). NULL with an error
 * listing the registered policies and the path when neither exists. The
 * built-ins are registered first. */
const mb_policy_ops *mb_policy_find_or_load(const char *name, char *err, size_t errlen);

/* The plugin path, in lookup order: each folder of $MECBED_PLUGIN_PATH
 * (':'-separated), $MECBED_PLUGIN_DIR, the current folder, <binary's
 * dir>/plugins (build/plugins beside build/mecbed), <binary's
 * dir>/../lib/mecbed/plugins (an installed binary), PREFIX/lib/mecbed/plugins.
 * Duplicates are dropped. Returns how many folders went into dirs. */
#define MB_PLUGIN_MAX_DIRS 16
int mb_policy_plugin_dirs(char dirs[][4096], int max);
/* The same joined by ':' into buf; returns buf. */
const char *mb_policy_plugin_path(char *buf, size_t len);
/* The first <dir>/<name>.so along the path into out: 0, or -1 when none. */
int mb_policy_plugin_find(const char *name, char *out, size_t len);
/* Load every *.so on the plugin path (the built-ins first); cb (may be
 * NULL) hears of each file: its policy's name, or NULL and the error.
 * Returns how many files failed. */
typedef void (*mb_policy_load_cb)(const char *path, const char *name, const char *err, void *user);
int mb_policy_load_path(mb_policy_load_cb cb, void *user);
/* The file a plugin policy was loaded from (real path); NULL for built-ins. */
const char *mb_policy_origin(const mb_policy_ops *ops);
void mb_policy_set_origin(const char *name, const char *path);

/* Declared options, uniformly for ABI versions 2 (option_keys: type -1,
 * no default or help) and 3 (options). */
int mb_policy_option_count(const mb_policy_ops *ops);
mb_policy_option mb_policy_option_at(const mb_policy_ops *ops, int i);
/* "string", "number", "int", "bool", or "any" (a version 2 key). */
const char *mb_policy_option_type_name(int type);
/* The declared option names joined by ", " into buf; returns buf. */
const char *mb_policy_option_names(const mb_policy_ops *ops, char *buf, size_t len);

/* Check "key=value,..." against the options ops declares: -1 with an error
 * naming the first unknown or malformed key (and the keys it takes), or a
 * value that does not parse as its declared type. */
int mb_policy_check_options(const mb_policy_ops *ops, const char *options, char *err,
                            size_t errlen);

/* The items of options whose keys ops declares, into buf (for commands that
 * hand one option string to several policies); returns buf. */
const char *mb_policy_options_for(const mb_policy_ops *ops, const char *options, char *buf,
                                  size_t len);

/* --verbose: let policies' MB_LOG_INFO/DEBUG messages through. */
void mb_policy_set_verbose(int on);

/* The host table mecbed hands to policies. */
const mb_host *mb_policy_host(void);

/* A policy bound to one model, topology and cost model: init once (offline
 * work), then plan or replan as conditions change, fini at the end. */
typedef struct mb_policy_session mb_policy_session;
/* Options are checked (mb_policy_check_options) before init. */
mb_policy_session *mb_policy_session_new(const mb_policy_ops *ops, const mb_graph *g,
                                         const mb_topology *t, const mb_cost_model *c, int device,
                                         mb_objective obj, const char *options, char *err,
                                         size_t errlen);
/* prev NULL: plan(); else replan() (or plan() when the policy has none).
 * The plan is timed into decision_us, validated and evaluated. NULL + err. */
mb_plan *mb_policy_session_plan(mb_policy_session *s, const mb_plan *prev, char *err,
                                size_t errlen);
void mb_policy_session_free(mb_policy_session *s);

/* One-shot: session_new, session_plan, session_free. Returns a new plan or
 * NULL with err. */
mb_plan *mb_policy_run(const mb_policy_ops *ops, const mb_graph *g, const mb_topology *t,
                       const mb_cost_model *c, int device, mb_objective obj, const char *options,
                       char *err, size_t errlen);

#endif
