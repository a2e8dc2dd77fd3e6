/*
 * bench_opts.c -- ringmq-bench's command line: parsing, checking every
 * value and the combinations that make no sense, and --help.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "mqtt.h"

static const char bench_usage[] =
"Usage: ringmq-bench [OPTIONS]\n"
"Load generator for an MQTT broker on this machine: many connections from\n"
"one process, loss / duplicate / order checks per publisher and subscriber,\n"
"end-to-end latency, connect times, and the broker's CPU and memory.\n"
"\n"
"Target\n"
"  -h, --host HOST        broker address: a loopback address such as\n"
"                         127.0.0.1 or ::1, or localhost (127.0.0.1)\n"
"  -p, --port PORT        broker port (1883)\n"
"      --broker-pid PID   report CPU (utime+stime) and peak RSS (VmHWM) of\n"
"                         PID and all its descendants, read at the start\n"
"                         and the end of the measured interval\n"
"Scenario\n"
"      --scenario NAME    fanout   P publishers -> S subscribers, one topic\n"
"                         fanin    P publishers -> 1 subscriber\n"
"                         pairs    publisher i -> subscriber i, own topic\n"
"                                  (S = P)\n"
"                         shared   P publishers -> S subscribers of\n"
"                                  $share/g/TOPIC (each message to one)\n"
"                         storm    S clients connect and disconnect, in\n"
"                                  rounds, for the duration\n"
"                         (fanout)\n"
"  -P, --publishers N     publishers (1)\n"
"  -S, --subscribers N    subscribers; storm: clients per round (1)\n"
"  -q, --qos 0|1|2        QoS of publications and subscriptions (0)\n"
"  -V, --mqtt 311|5       protocol version (311)\n"
"  -s, --size BYTES       payload size, at least 16 (64)\n"
"  -r, --rate MSGS        open loop: messages per second per publisher\n"
"                         (10 unless -w is given)\n"
"  -w, --window N         closed loop: each publisher keeps N messages sent\n"
"                         but not yet received by all their subscribers\n"
"  -d, --duration SECS    measured interval (10)\n"
"      --warmup SECS      unmeasured interval before it (1)\n"
"      --drain SECS       wait for late messages after it; what is still\n"
"                         missing then counts as lost (5)\n"
"      --topic PREFIX     topic prefix (ringmq-bench/PID)\n"
"      --connect-batch N  connection attempts at once (500; storm: all)\n"
"      --connect-timeout SECS  per connection, CONNECT to CONNACK/SUBACK\n"
"                         (10)\n"
"      --keepalive SECS   keep alive sent in CONNECT (60)\n"
"Output\n"
"      --json             every figure as one JSON object on stdout\n"
"      --plot FILE.png    latency percentiles and delivery rate per second\n"
"                         (needs gnuplot)\n"
"      --quiet            no progress line on stderr\n"
"      --help             this text\n"
"\n"
"Exit status: 0 every measured message arrived exactly once (storm: every\n"
"connection succeeded); 1 loss, duplicates, unexpected messages, connection\n"
"errors or nothing measured; 2 bad options; 3 clean run but --plot failed.\n"
"\n"
"Example (smoke test): ringmq-bench --scenario fanout -P 1 -S 20 -q 1 \\\n"
"                      -r 100 -d 2 --warmup 0\n";

enum {
    OPT_SCENARIO = 256,
    OPT_WARMUP,
    OPT_DRAIN,
    OPT_BROKER_PID,
    OPT_JSON,
    OPT_PLOT,
    OPT_QUIET,
    OPT_HELP,
    OPT_TOPIC,
    OPT_CONNECT_BATCH,
    OPT_CONNECT_TIMEOUT,
    OPT_KEEPALIVE
};

static const struct option bench_longopts[] = {
    {"host", required_argument, NULL, 'h'},
    {"port", required_argument, NULL, 'p'},
    {"scenario", required_argument, NULL, OPT_SCENARIO},
    {"publishers", required_argument, NULL, 'P'},
    {"subscribers", required_argument, NULL, 'S'},
    {"qos", required_argument, NULL, 'q'},
    {"mqtt", required_argument, NULL, 'V'},
    {"size", required_argument, NULL, 's'},
    {"rate", required_argument, NULL, 'r'},
    {"window", required_argument, NULL, 'w'},
    {"duration", required_argument, NULL, 'd'},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"broker-pid", required_argument, NULL, OPT_BROKER_PID},
    {"json", no_argument, NULL, OPT_JSON},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"connect-batch", required_argument, NULL, OPT_CONNECT_BATCH},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {NULL, 0, NULL, 0}};

static const char *const bench_scenarios[] = {
    [BENCH_FANOUT] = "fanout", [BENCH_FANIN] = "fanin",
    [BENCH_PAIRS] = "pairs", [BENCH_SHARED] = "shared",
    [BENCH_STORM] = "storm"};

const char *
bench_scenario_name(int scenario)
{
    return bench_scenarios[scenario];
}

static int
bench_bad(const char *opt, const char *val, const char *want)
{
    fprintf(stderr, "ringmq-bench: %s '%s': %s (see --help)\n", opt, val,
            want);
    return BENCH_ERR;
}

/* Whole-string integer in [lo, hi]. */
static int
bench_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        char want[96];

        snprintf(want, sizeof(want), "expected an integer from %ld to %ld",
                 lo, hi);
        return bench_bad(opt, s, want);
    }
    *out = v;
    return BENCH_OK;
}

/* Whole-string finite number in [lo, hi]. */
static int
bench_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo
        || v > hi) {
        char want[96];

        snprintf(want, sizeof(want), "expected a number from %g to %g", lo,
                 hi);
        return bench_bad(opt, s, want);
    }
    *out = v;
    return BENCH_OK;
}

/* Resolves cfg->host:port into cfg->addr, accepting loopback addresses
 * only.  Returns BENCH_OK, or BENCH_ERR after a message on stderr. */
static int
bench_resolve(bench_cfg_t *cfg)
{
    struct addrinfo hints, *ai = NULL, *a;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* No name service: a numeric address, or localhost from /etc/hosts. */
    if (strcmp(cfg->host, "localhost") != 0) {
        hints.ai_flags = AI_NUMERICHOST;
    }
    snprintf(port, sizeof(port), "%d", cfg->port);
    rc = getaddrinfo(cfg->host, port, &hints, &ai);
    if (rc != 0) {
        return bench_bad("-h", cfg->host, gai_strerror(rc));
    }
    for (a = ai; a != NULL; a = a->ai_next) {
        bool loop = false;

        if (a->ai_family == AF_INET) {
            const struct sockaddr_in *s = (const void *) a->ai_addr;

            loop = (ntohl(s->sin_addr.s_addr) >> 24) == 127;
        } else if (a->ai_family == AF_INET6) {
            const struct sockaddr_in6 *s = (const void *) a->ai_addr;

            loop = IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
        }
        if (loop && a->ai_addrlen <= sizeof(cfg->addr)) {
            memcpy(&cfg->addr, a->ai_addr, a->ai_addrlen);
            cfg->addrlen = a->ai_addrlen;
            freeaddrinfo(ai);
            return BENCH_OK;
        }
    }
    freeaddrinfo(ai);
    return bench_bad("-h", cfg->host,
                     "not a loopback address (ringmq-bench only loads a "
                     "broker on this machine)");
}

int
bench_opts_parse(int argc, char **argv, bench_cfg_t *cfg, bool *help)
{
    bool got_s = false, got_p = false, got_rate = false, got_batch = false;
    long l;
    double d;
    int c;
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->port = 1883;
    cfg->scenario = BENCH_FANOUT;
    cfg->publishers = 1;
    cfg->subscribers = 1;
    cfg->version = MQTT_V311;
    cfg->payload = 64;
    cfg->rate = 10;
    cfg->duration = 10;
    cfg->warmup = 1;
    cfg->drain = 5;
    cfg->connect_batch = 500;
    cfg->connect_timeout = 10;
    cfg->keepalive = 60;
    snprintf(cfg->topic, sizeof(cfg->topic), "ringmq-bench/%d",
             (int) getpid());
    *help = false;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h:p:P:S:q:V:s:r:w:d:",
                            bench_longopts, NULL)) != -1) {
        /* For ':' and '?': the option just read. */
        const char *name = optind > 1 ? argv[optind - 1] : "?";

        switch (c) {
        case 'h':
            cfg->host = optarg;
            break;
        case 'p':
            if (bench_int("-p", optarg, 1, 65535, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->port = (int) l;
            break;
        case OPT_SCENARIO:
            for (i = 0; i < sizeof(bench_scenarios) / sizeof(*bench_scenarios);
                 i++) {
                if (strcmp(optarg, bench_scenarios[i]) == 0) {
                    break;
                }
            }
            if (i == sizeof(bench_scenarios) / sizeof(*bench_scenarios)) {
                return bench_bad("--scenario", optarg,
                                 "expected fanout, fanin, pairs, shared or "
                                 "storm");
            }
            cfg->scenario = (int) i;
            break;
        case 'P':
            if (bench_int("-P", optarg, 1, 100000, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->publishers = (int) l;
            got_p = true;
            break;
        case 'S':
            if (bench_int("-S", optarg, 1, 100000, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->subscribers = (int) l;
            got_s = true;
            break;
        case 'q':
            if (bench_int("-q", optarg, 0, 2, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->qos = (int) l;
            break;
        case 'V':
            if (strcmp(optarg, "311") == 0 || strcmp(optarg, "3.1.1") == 0) {
                cfg->version = MQTT_V311;
            } else if (strcmp(optarg, "5") == 0 || strcmp(optarg, "50") == 0
                       || strcmp(optarg, "5.0") == 0) {
                cfg->version = MQTT_V5;
            } else {
                return bench_bad("-V", optarg, "expected 311 or 5");
            }
            break;
        case 's':
            if (bench_int("-s", optarg, BENCH_PAYLOAD_MIN, BENCH_PAYLOAD_MAX,
                          &l) < 0) {
                return BENCH_ERR;
            }
            cfg->payload = (size_t) l;
            break;
        case 'r':
            if (bench_num("-r", optarg, 0.001, 1e7, &d) < 0) {
                return BENCH_ERR;
            }
            cfg->rate = d;
            got_rate = true;
            break;
        case 'w':
            if (bench_int("-w", optarg, 1, 1000000, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->window = (int) l;
            break;
        case 'd':
            if (bench_num("-d", optarg, 0.1, 86400, &d) < 0) {
                return BENCH_ERR;
            }
            cfg->duration = d;
            break;
        case OPT_WARMUP:
            if (bench_num("--warmup", optarg, 0, 3600, &d) < 0) {
                return BENCH_ERR;
            }
            cfg->warmup = d;
            break;
        case OPT_DRAIN:
            if (bench_num("--drain", optarg, 0.1, 3600, &d) < 0) {
                return BENCH_ERR;
            }
            cfg->drain = d;
            break;
        case OPT_BROKER_PID:
            if (bench_int("--broker-pid", optarg, 1, 0x3fffffff, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->broker_pid = (pid_t) l;
            break;
        case OPT_JSON:
            cfg->json = true;
            break;
        case OPT_PLOT:
            if (optarg[0] == '\0' || strpbrk(optarg, "'\"\n\\") != NULL) {
                return bench_bad("--plot", optarg,
                                 "expected a file name without quotes, "
                                 "backslashes or newlines");
            }
            cfg->plot = optarg;
            break;
        case OPT_QUIET:
            cfg->quiet = true;
            break;
        case OPT_HELP:
            fputs(bench_usage, stdout);
            *help = true;
            return BENCH_OK;
        case OPT_TOPIC:
            if (optarg[0] == '\0' || strlen(optarg) > 100
                || strpbrk(optarg, "+#") != NULL) {
                return bench_bad("--topic", optarg,
                                 "expected 1 to 100 bytes without + or #");
            }
            snprintf(cfg->topic, sizeof(cfg->topic), "%s", optarg);
            break;
        case OPT_CONNECT_BATCH:
            if (bench_int("--connect-batch", optarg, 1, 1000000, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->connect_batch = (int) l;
            got_batch = true;
            break;
        case OPT_CONNECT_TIMEOUT:
            if (bench_num("--connect-timeout", optarg, 0.1, 3600, &d) < 0) {
                return BENCH_ERR;
            }
            cfg->connect_timeout = d;
            break;
        case OPT_KEEPALIVE:
            if (bench_int("--keepalive", optarg, 0, 65535, &l) < 0) {
                return BENCH_ERR;
            }
            cfg->keepalive = (int) l;
            break;
        case ':':
            fprintf(stderr, "ringmq-bench: option '%s' needs a value (see "
                    "--help)\n", name);
            return BENCH_ERR;
        default:
            if (optopt != 0) {
                fprintf(stderr, "ringmq-bench: unknown option '-%c' (see "
                        "--help)\n", optopt);
            } else {
                fprintf(stderr, "ringmq-bench: unknown option '%s' (see "
                        "--help)\n", name);
            }
            return BENCH_ERR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ringmq-bench: unexpected argument '%s' (see "
                "--help)\n", argv[optind]);
        return BENCH_ERR;
    }

    /* Combinations. */
    if (got_rate && cfg->window > 0) {
        fprintf(stderr, "ringmq-bench: -r (open loop) and -w (closed loop) "
                "exclude each other\n");
        return BENCH_ERR;
    }
    if (cfg->window > 0) {
        cfg->rate = 0;
    }
    switch (cfg->scenario) {
    case BENCH_FANIN:
        if (got_s && cfg->subscribers != 1) {
            fprintf(stderr, "ringmq-bench: fanin has one subscriber "
                    "(-S %d given)\n", cfg->subscribers);
            return BENCH_ERR;
        }
        cfg->subscribers = 1;
        break;
    case BENCH_PAIRS:
        if (got_s && got_p && cfg->subscribers != cfg->publishers) {
            fprintf(stderr, "ringmq-bench: pairs needs as many subscribers "
                    "as publishers (-P %d, -S %d)\n", cfg->publishers,
                    cfg->subscribers);
            return BENCH_ERR;
        }
        if (got_s && !got_p) {
            cfg->publishers = cfg->subscribers;
        }
        cfg->subscribers = cfg->publishers;
        break;
    case BENCH_STORM:
        if (got_p) {
            fprintf(stderr, "ringmq-bench: storm has no publishers: -S sets "
                    "the clients per round\n");
            return BENCH_ERR;
        }
        if (cfg->window > 0 || got_rate) {
            fprintf(stderr, "ringmq-bench: storm publishes nothing: -r and "
                    "-w do not apply\n");
            return BENCH_ERR;
        }
        cfg->publishers = 0;
        if (!got_batch) {
            cfg->connect_batch = cfg->subscribers;
        }
        break;
    default:
        break;
    }
    if (bench_resolve(cfg) < 0) {
        return BENCH_ERR;
    }
    if (cfg->broker_pid > 0 && kill(cfg->broker_pid, 0) < 0
        && errno == ESRCH) {
        char pid[24];

        snprintf(pid, sizeof(pid), "%d", (int) cfg->broker_pid);
        return bench_bad("--broker-pid", pid, "no such process");
    }
    return BENCH_OK;
}
