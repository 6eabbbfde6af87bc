/*
 * Stand-in for the Kubernetes pause image (registry.k8s.io/pause): the process that holds a pod
 * sandbox's namespaces open. Its contract, which this keeps:
 *   - it does nothing but wait, forever, using no CPU;
 *   - SIGINT and SIGTERM end it with status 0 (the runtime stops the sandbox that way);
 *   - as PID 1 of a pod that shares its PID namespace, it reaps every orphan that is reparented to
 *     it, so no zombie outlives its parent;
 *   - `-v` prints a version and exits.
 * Built with `gcc -static` into an image FROM scratch: no libc, shell or anything else inside.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define STANDIN_VERSION "3.10-bazar-standin"

static void on_stop(int sig) {
  /* Only async-signal-safe calls here: write(2) and _exit(2). */
  static const char msg[] = "pause: stopping on signal\n";
  (void)sig;
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  /* Several children may have exited behind one SIGCHLD: reap until none is left. */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static int install(int sig, void (*handler)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    printf("pause.c %s\n", STANDIN_VERSION);
    return 0;
  }
  if (getpid() != 1) {
    /* Not fatal: it still waits, but it cannot reap a pod's orphans unless it is PID 1. */
    fprintf(stderr, "pause: warning: not PID 1, orphans are not reparented to me\n");
  }
  if (install(SIGINT, on_stop, 0) < 0 || install(SIGTERM, on_stop, 0) < 0 ||
      install(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
  /* Unreachable; the loop only ends through a signal handler. */
  return 42;
}
