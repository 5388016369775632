/* cli.h — subcommands of the `mmrec` CLI, one file each; main() in mmrec.c dispatches.
 * Each takes argv after the subcommand name and returns a process exit code
 * (0 ok, 1 failure, 2 usage). */
#ifndef MMR_CLI_H
#define MMR_CLI_H

int mmr_cli_rank(int argc, char **argv);
int mmr_cli_health(int argc, char **argv);
int mmr_cli_produce(int argc, char **argv);
int mmr_cli_gen(int argc, char **argv);
int mmr_cli_inspect(int argc, char **argv);

/* Returns the value of "--name" in argv (as "--name value" or "--name=value"), or def. */
const char *mmr_cli_opt(int argc, char **argv, const char *name, const char *def);
/* 1 when the bare flag "--name" is present. */
int mmr_cli_flag(int argc, char **argv, const char *name);
/* Rejects options not in the NULL-terminated allowed list (flags and valued options);
 * prints the offender and returns 0. */
int mmr_cli_check_opts(int argc, char **argv, const char *const *valued, const char *const *flags);

#endif
