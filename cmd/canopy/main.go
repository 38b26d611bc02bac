// Command canopy is Canopy's command line: it reads and changes a
// canopyd's organisations, asks it for decisions and explanations, and
// follows its change streams. Run "canopy --help" for the commands.
//
// Exit codes: 0 success (and, for check, allowed); 1 a "no" answer
// (check denied); 2 an error, printed as one line on standard error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
