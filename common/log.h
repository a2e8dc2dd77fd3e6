/*
 * log.h -- logging in Mosquitto's style ("1732800000: message"), to the
 * destinations and for the types that log_dest / log_type select.  Each
 * process tags its lines with its role ("frontend 1").
 */
#ifndef RINGMQ_LOG_H
#define RINGMQ_LOG_H

#include <stdarg.h>

/* Log types, as Mosquitto names them in log_type. */
#define LOG_T_ERR 0x01
#define LOG_T_WARNING 0x02
#define LOG_T_NOTICE 0x04
#define LOG_T_INFO 0x08
#define LOG_T_DEBUG 0x10
#define LOG_T_SUBSCRIBE 0x20
#define LOG_T_UNSUBSCRIBE 0x40
#define LOG_T_ALL 0xff
#define LOG_T_DEFAULT (LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO)

/* Destinations (log_dest); several may be set. */
#define LOG_D_STDOUT 0x01
#define LOG_D_STDERR 0x02
#define LOG_D_FILE 0x04
#define LOG_D_SYSLOG 0x08

/*
 * Sets what is logged and where.  file may be NULL unless LOG_D_FILE is set;
 * it is opened in append mode.  Returns 0, or -1 (with a message on stderr)
 * when the file cannot be opened.
 */
int log_setup(unsigned types, unsigned dests, const char *file);

/* The descriptor of the log file, or -1 (a forked child keeps it). */
int log_fd(void);

/* Sets the role tag printed after the timestamp, e.g. "frontend 1". */
void log_set_role(const char *role);

/* Returns the types currently enabled. */
unsigned log_types(void);

/*
 * Moves the enabled types into a word in shared memory (initialised with
 * the current types), so that log_set_types() in the process that writes
 * it (the supervisor) changes logging in every process at once.
 */
void log_share_types(unsigned *word);

/* Sets the enabled types (in the shared word when there is one). */
void log_set_types(unsigned types);

/*
 * Logs one line when type is enabled: "TIME: [ROLE] message", formatted on
 * the stack (no allocation, at most 2047 bytes; longer messages end in
 * "...") and written to each destination with one write() call.  Never
 * fails; errno is preserved.
 */
void log_msg(unsigned type, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(unsigned type, const char *fmt, va_list ap);

#define log_err(...) log_msg(LOG_T_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_T_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_T_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_T_INFO, __VA_ARGS__)
#define log_debug(...)                                                     \
    do {                                                                   \
        if (log_types() & LOG_T_DEBUG)                                     \
            log_msg(LOG_T_DEBUG, __VA_ARGS__);                             \
    } while (0)

#endif
