/*
 * berth-init: the tiny PID 1 that `berth run --init` puts in front of the container's
 * command. It starts the command as its only child, forwards every catchable signal to
 * it, reaps every process that gets reparented to it, and exits with the child's status
 * (128 + signal when the child was killed), like Docker's docker-init.
 *
 * Built statically by crates/engine/build.rs so it runs in any image, even one without a
 * C library.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (first >= argc) {
        fprintf(stderr, "berth-init: no command given\n");
        return 2;
    }

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);

    pid_t child = fork();
    if (child < 0) {
        perror("berth-init: fork");
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        setpgid(0, 0);
        execvp(argv[first], &argv[first]);
        fprintf(stderr, "berth-init: exec %s: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&all, &info, &tick);
        if (sig > 0 && sig != SIGCHLD) {
            kill(child, sig);
        }
        for (;;) {
            int status;
            pid_t done = waitpid(-1, &status, WNOHANG);
            if (done <= 0)
                break;
            if (done == child) {
                if (WIFEXITED(status))
                    return WEXITSTATUS(status);
                if (WIFSIGNALED(status))
                    return 128 + WTERMSIG(status);
                return 1;
            }
        }
    }
}
