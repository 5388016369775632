/* mmrec.c — the `mmrec` CLI: argument helpers and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
} command_t;

static const command_t commands[] = {
    {"gen", mmr_cli_gen, "gen --out DIR [--users N] [--items N] [--topics N] [--events N] [--seed S]\n"
                         "      [--dims T,I,V] [--start-ms MS]\n"
                         "      synthetic multimodal catalog (items.jsonl) and event log (events.tsv)"},
    {"produce", mmr_cli_produce, "produce --brokers HOST:PORT [--events FILE.tsv] [--items FILE.jsonl]\n"
                                 "      [--events-topic T] [--items-topic T] [--rate N/s] [--dims T,I,V (for raw text)]\n"
                                 "      push a dataset into Kafka (protobuf mmrec.v1.Event / Item)"},
    {"rank", mmr_cli_rank, "rank --addr HOST:PORT --user ID --candidates A,B,C [--top-k N] [--exclude-seen]\n"
                           "      [TLS/auth options] call mmrec.v1.Ranker/Rank and print the ranked items"},
    {"health", mmr_cli_health, "health --addr HOST:PORT [--service NAME] [TLS/auth options]\n"
                               "      grpc.health.v1 Check; exit 0 when SERVING"},
    {"model", mmr_cli_model, "model list|promote V|pin V|unpin|rollback --addr HOST:PORT [TLS/auth options]\n"
                             "      model versions of a running mmrecd (mmrec.v1.Admin)"},
    {"replay", mmr_cli_replay, "replay --events FILE.tsv | --kafka BROKERS [--topic T] [--from-ms MS] [--to-ms MS] [--format protobuf|json]\n"
                               "      [--kafka-timeout-ms MS]  [--items FILE.jsonl] [--out DIR] [--oracle FILE] [--protocol leave-one-out|prequential]\n"
                               "      [--windows N] [--passes P] [--k 1,5,10,20,50] [--seed S] [--no-ablations] [--threads N] [--lr F]\n"
                               "      [--neg N] [--hidden N] [--dim N] [--batch N] [--chunk N] [--max-bad F] [--tmp DIR] [--keep-store]\n"
                               "      offline evaluation (docs/REPLAY.md): the model vs popularity and modality ablations"},
    {"inspect", mmr_cli_inspect, "inspect user|item ID --db PATH\n"
                                 "      print a user's recent interactions or an item's record and stats"},
    {"export", mmr_cli_export, "export --db PATH --out DIR [--what items,users]\n"
                               "      consistent snapshot of a store (read-only: runs beside mmrecd) as\n"
                               "      items.jsonl (replay --items format), users.jsonl, manifest.json with the offsets"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: mmrec COMMAND [options]\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(out, "  %s\n", commands[i].usage);
    fprintf(out, "\nTLS/auth options: --ca FILE (TLS, trusting this CA) [--cert FILE --key FILE (mutual TLS)]\n"
                 "  [--tls-name NAME] [--token T (bearer; or the MMREC_TOKEN environment variable)]\n"
                 "\nmmrec COMMAND --help shows one command.\n");
}

const char *mmr_cli_opt(int argc, char **argv, const char *name, const char *def) {
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) || strncmp(argv[i] + 2, name, n)) continue;
        if (argv[i][2 + n] == '=') return argv[i] + 3 + n;
        if (argv[i][2 + n] == '\0' && i + 1 < argc) return argv[i + 1];
    }
    return def;
}

int mmr_cli_flag(int argc, char **argv, const char *name) {
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "--", 2) && !strcmp(argv[i] + 2, name)) return 1;
    return 0;
}

static int in_list(const char *const *list, const char *s, size_t n) {
    for (; list && *list; list++)
        if (strlen(*list) == n && !strncmp(*list, s, n)) return 1;
    return 0;
}

int mmr_cli_check_opts(int argc, char **argv, const char *const *valued, const char *const *flags) {
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) continue;
        const char *name = argv[i] + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if (in_list(valued, name, n)) { if (!eq) i++; continue; }
        if (!eq && in_list(flags, name, n)) continue;
        fprintf(stderr, "mmrec: unknown option '%s'\n", argv[i]);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        if (mmr_cli_flag(argc - 2, argv + 2, "help")) {
            printf("usage: mmrec %s\n", commands[i].usage);
            return 0;
        }
        return commands[i].fn(argc - 2, argv + 2);
    }
    fprintf(stderr, "mmrec: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
