/*
 * holder.c — reservation holders' names and liveness (see holder.h).
 */
#include "holder.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static char host[128];
static char domain[256];
static char name[320];

/* Field 22 of /proc/PID/stat: the start time in clock ticks since boot; -1 if unknown. */
static long long start_time(long pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t len = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[len] = '\0';
    const char *p = strrchr(line, ')'); /* the command name may hold spaces and ')' */
    if (p == NULL)
        return -1;
    /* after ") " come fields 3 (state) to 52; the start time is field 22 */
    for (int field = 2; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL)
        return -1;
    char *end;
    long long ticks = strtoll(p + 1, &end, 10);
    return end != p + 1 ? ticks : -1;
}

static void read_boot_id(char *out, size_t size)
{
    snprintf(out, size, "noboot");
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f == NULL)
        return;
    char line[64];
    if (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] != '\0')
            snprintf(out, size, "%s", line);
    }
    fclose(f);
}

int tg_holder_init(void)
{
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    host[strcspn(host, ":/")] = '\0'; /* the separators of a name */
    char boot[64];
    read_boot_id(boot, sizeof(boot));
    struct stat ns;
    unsigned long long pidns =
        stat("/proc/self/ns/pid", &ns) == 0 ? (unsigned long long)ns.st_ino : 0;
    snprintf(domain, sizeof(domain), "%s/%s/%llu", host, boot, pidns);
    long pid = (long)getpid();
    snprintf(name, sizeof(name), "%s:%ld:%lld", domain, pid, start_time(pid));
    return TG_OK;
}

const char *tg_holder_name(void)
{
    return name;
}

const char *tg_holder_domain(void)
{
    return domain;
}

const char *tg_holder_host(void)
{
    return host;
}

bool tg_holder_is_dead(const char *holder)
{
    size_t dlen = strlen(domain);
    if (strncmp(holder, domain, dlen) != 0 || holder[dlen] != ':')
        return false;
    char *end;
    long pid = strtol(holder + dlen + 1, &end, 10);
    if (pid <= 0 || *end != ':')
        return false;
    const char *digits = end + 1;
    long long started = strtoll(digits, &end, 10);
    if (end == digits || *end != '\0')
        return false;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return true;
    long long now_started = start_time(pid);
    return now_started >= 0 && started >= 0 && now_started != started; /* the pid was reused */
}
