/**
 * The one user-facing error type. Whatever the person running mdevfs can fix
 * (a missing mount point, a driver that will not load, a bad config) is
 * thrown as a UserError; the command line's main() is the one place
 * that prints it: "mdevfs: <line>" for each line of the message, no stack
 * trace, then exit with `exitCode`.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
