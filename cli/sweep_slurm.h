/* A sweep as a Slurm job array (cli/sweep_slurm.c): one array task per
 * shard (`sweep --shard I/N`), then a job that merges them. */
#ifndef MB_CLI_SWEEP_SLURM_H
#define MB_CLI_SWEEP_SLURM_H

#include <stddef.h>

typedef struct sweep_slurm_job {
    const char *name;        /* the experiment's name (job names) */
    const char *conf;        /* the experiment file */
    int quick, no_plots, no_times;
    const char *extra_types; /* --node-types, or NULL */
    const char *const *plugins; /* --policy-plugin values (files made absolute) */
    int n_plugins;
    const char *dir;         /* shards go to DIR/shard-I, the merged results to DIR */
    int shards;
    int exclusive;           /* run mode: measured runs get a whole node each */
} sweep_slurm_job;

/* Writes DIR/slurm/shards.sbatch and DIR/slurm/merge.sbatch (absolute
 * paths, so they run from any node that shares the file system). With
 * submit, submits both with sbatch (the merge after the array succeeds) and
 * puts the job ids in array_id / merge_id. 0, or -1 with err. */
int sweep_slurm_write(const sweep_slurm_job *j, int submit, char *array_id, char *merge_id, size_t idlen,
                      char *err, size_t errlen);

#endif
