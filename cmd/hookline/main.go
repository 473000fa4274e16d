// Command hookline is the command-line companion of the hookline webhook
// delivery library: it sends signed test callbacks, receives and verifies
// them while you build an endpoint, and inspects, redelivers and migrates the
// deliveries of a Postgres store.
//
// Install it with
//
//	go install github.com/hookline/hookline/cmd/hookline@latest
//
// or run it from a clone with go run ./cmd/hookline.
//
// # Commands
//
//	hookline send --url URL --secret S [flags]
//
// Freezes a batch callback (event, batch id, status, output and metadata
// from flags or from a JSON file given with --file), signs it with the secret
// (--scheme standard, hex or both; --prefix names the hex header), and
// delivers it through a Deliverer of its own, held in memory (or in Postgres
// with --dsn, so that history and redeliver see it). It makes --attempts
// attempts (default 1) and prints the delivery record: a summary, or the
// record's JSON with --json. It exits 0 when the delivery succeeded and 1
// when it did not. The destination guard is on, as in production: a
// receiver on loopback or a private network is refused (reason
// blocked_destination) unless --allow-private is given.
//
//	hookline listen [--addr 127.0.0.1:8080] --secret S [--secret S2 ...] [flags]
//
// A local receiver for testing an integration: it verifies every request
// with signing.Verifier against all the secrets given (Standard Webhooks or
// hex, whichever the request carries, when every secret is a whsec_ one;
// hex only otherwise), prints the request (headers, verification result
// with the secret that matched, or the reason it failed, and the body), and
// answers 204 when the signature checks out and a bare 401 when it does not
// (405 for a method other than POST, 413 for too large a body). --json prints one JSON object per request. The
// first line on stderr gives the address it listens on. SIGINT or SIGTERM
// stops it cleanly; a second one ends it at once. The same holds for every
// command that waits (send, redeliver --wait).
//
//	hookline history BATCH_ID [--json]
//	hookline redeliver BATCH_ID [--wait --secret S] [--json]
//	hookline migrate [--json]
//
// These work on a Postgres store named by --dsn or HOOKLINE_DATABASE_URL, in
// the schema --schema (default "hookline"). history lists the batch's
// deliveries, newest first; redeliver enqueues a new, manual delivery of the
// batch's latest callback and prints its record; migrate creates or updates
// the store's tables and prints the schema version.
//
// redeliver only enqueues: the Deliverer of the service that uses the store
// (the host) claims the new delivery and signs it with its own secrets. With
// --wait, hookline also runs a Deliverer itself, signing with --secret, until
// the new delivery has succeeded or failed. That Deliverer (and that of send
// --dsn) sends its own delivery only: any other delivery of the shared queue
// it happens to claim is released at once for the host's workers.
//
//	hookline version
//	hookline help [COMMAND]
//
// # Conventions
//
// Every command answers --help (and hookline help COMMAND) on stdout with
// exit status 0. Errors go to stderr. The exit status is 0 on success, 1
// when the work failed (a delivery that did not succeed, an unreachable
// database), and 2 for a usage error (an unknown flag, a missing argument).
//
// Secrets given as flags are visible to other users of the machine (in ps
// output); prefer the environment: HOOKLINE_SECRET for send and redeliver,
// HOOKLINE_SECRETS (comma-separated) for listen.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// env reads the process environment; tests of run replace it.
var env = os.Getenv

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // full usage text, flags included
	run     func(c *cli, args []string) int
}

// cli carries the standard streams to a command.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func commands() []*command {
	return []*command{sendCommand, listenCommand, historyCommand, redeliverCommand, migrateCommand, versionCommand, helpCommand}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

const mainUsage = `hookline sends, receives and inspects signed webhook callbacks.

Usage:

	hookline <command> [flags] [arguments]

Commands:

	send        fire a signed test callback at a URL and print the delivery record
	listen      run a local receiver that verifies and prints each callback
	history     list a batch's deliveries from the Postgres store
	redeliver   enqueue a new delivery of a batch's callback in the Postgres store
	migrate     create or update the Postgres store's tables
	version     print hookline's version
	help        print the usage of a command

Run 'hookline help <command>' or 'hookline <command> --help' for its flags.

Exit status: 0 success, 1 failure, 2 usage error.
`

// run is the whole program: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return 0
	case "-v", "-version", "--version":
		return versionCommand.run(c, nil)
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "hookline: unknown command %q\nRun 'hookline --help' for the list of commands.\n", args[0])
		return 2
	}
	return cmd.run(c, args[1:])
}

var helpCommand = &command{
	name:    "help",
	summary: "print the usage of a command",
	usage: `Usage: hookline help [COMMAND]

Prints the usage of COMMAND, or the list of commands.
`,
}

func init() {
	// Assigned here: runHelp refers to commands(), which refers to helpCommand.
	helpCommand.run = runHelp
}

func runHelp(c *cli, args []string) int {
	switch len(args) {
	case 0:
		fmt.Fprint(c.stdout, mainUsage)
		return 0
	case 1:
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			fmt.Fprint(c.stdout, helpCommand.usage)
			return 0
		}
		cmd := lookup(args[0])
		if cmd == nil {
			fmt.Fprintf(c.stderr, "hookline help: unknown command %q\nRun 'hookline --help' for the list of commands.\n", args[0])
			return 2
		}
		fmt.Fprint(c.stdout, cmd.usage)
		return 0
	default:
		fmt.Fprintf(c.stderr, "hookline help: too many arguments\n%s", helpCommand.usage)
		return 2
	}
}
