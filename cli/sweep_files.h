/* The files of a sweep's output folder (cli/sweep_files.c). */
#ifndef MB_CLI_SWEEP_FILES_H
#define MB_CLI_SWEEP_FILES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "mecbed/sweep.h"

/* results.csv in memory: its header and rows (column name -> value). */
typedef struct sweep_table {
    int n_cols;
    char *cols[SW_MAX_COLS];
    int n_rows, cap;
    sw_row *rows;
} sweep_table;

void sweep_table_free(sweep_table *t);
/* Append r (moved into the table; r is left empty). 0, or -1 out of memory. */
int sweep_table_add(sweep_table *t, sw_row *r);
/* Read a results.csv: 0, 1 when the file does not exist (empty table), or
 * -1 with err ("file:line: what"). */
int sweep_table_read(const char *path, sweep_table *t, char *err, size_t errlen);
/* Write atomically (temporary file, fsync, rename). */
int sweep_table_write(const sweep_table *t, const char *path, char *err, size_t errlen);

int sweep_mkdir_p(const char *path);
int sweep_write_text(const char *path, const char *text, char *err, size_t errlen);
/* meta.json's facts about this machine, the build and the command line. */
cJSON *sweep_meta_json(const sw_config *c, int quick, int argc, char **argv);
/* meta.json and results.json in dir (meta gains finished_utc, complete). */
int sweep_write_json(const sw_config *c, const sweep_table *t, cJSON *meta, const char *dir, int complete,
                     char *err, size_t errlen);
/* The experiment's plots into dir (PNG and SVG); returns how many failed. */
int sweep_run_plots(const sw_config *c, const char *dir, int quick);

#endif
