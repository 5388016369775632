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
int mmr_cli_model(int argc, char **argv);
int mmr_cli_replay(int argc, char **argv);
int mmr_cli_export(int argc, char **argv);

/* Options every RPC command accepts (for mmr_cli_check_opts), read by mmr_cli_connect. */
#define MMR_CLI_CONNECT_OPTS "addr", "ca", "cert", "key", "tls-name", "token"
/* A client for --addr (default 127.0.0.1:50051) with the TLS / token options; prints the
 * problem and exits (2 usage, 1 failure) when they are inconsistent. Owned by the caller. */
struct mmr_rpc_client *mmr_cli_connect(int argc, char **argv);

/* Returns the value of "--name" in argv (as "--name value" or "--name=value"), or def. */
const char *mmr_cli_opt(int argc, char **argv, const char *name, const char *def);
/* 1 when the bare flag "--name" is present. */
int mmr_cli_flag(int argc, char **argv, const char *name);
/* Rejects options not in the NULL-terminated allowed list (flags and valued options);
 * prints the offender and returns 0. */
int mmr_cli_check_opts(int argc, char **argv, const char *const *valued, const char *const *flags);

#endif
