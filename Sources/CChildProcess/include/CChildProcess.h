#ifndef BACKSTOP_CCHILDPROCESS_H
#define BACKSTOP_CCHILDPROCESS_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (both NULL-terminated). The child's stdin, stdout
/// and stderr become `stdin_fd`, `stdout_fd`, `stderr_fd` (-1 keeps the parent's).
/// The child gets SIGKILL when the thread that called this function exits, so a worker that
/// dies never leaves a pg_dump behind: call it from the thread that waits for the child.
/// `close_fds` lists descriptors the child must not keep (the parent's pipe ends).
/// Returns the pid, or -1 with errno set (an exec failure is reported as errno too).
pid_t backstop_spawn(const char *path, char *const argv[], char *const envp[],
                     int stdin_fd, int stdout_fd, int stderr_fd,
                     const int *close_fds, int close_fd_count);



/// pipe2(O_CLOEXEC): both ends close on exec unless dup2'ed into a child's 0/1/2.
int backstop_pipe_cloexec(int fds[2]);

/// Grows a pipe's buffer (Linux F_SETPIPE_SZ); returns the new size or -1.
int backstop_set_pipe_size(int fd, int size);
#endif
