package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store/postgres"
)

// errHelp is returned by parse when the user asked for --help; the usage has
// been printed to stdout.
var errHelp = errors.New("help requested")

// newFlagSet returns a flag set that prints nothing itself: parse reports.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("hookline "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args with flags and positional arguments in any order (flags
// may follow BATCH_ID) and returns the positional ones. "--" ends the flags.
// On --help it prints the usage to stdout and returns errHelp; on a bad flag
// it prints the error and a pointer to the usage to stderr.
func (c *cli) parse(cmd *command, fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, cmd.usage)
			return nil, errHelp
		}
		if err != nil {
			c.usageError(cmd, "%v", err)
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError prints a usage error for cmd to stderr; the caller returns 2.
func (c *cli) usageError(cmd *command, format string, a ...any) int {
	fmt.Fprintf(c.stderr, "hookline %s: %s\nRun 'hookline help %s' for usage.\n", cmd.name, fmt.Sprintf(format, a...), cmd.name)
	return 2
}

// failure prints a runtime failure for cmd to stderr; the caller returns 1.
func (c *cli) failure(cmd *command, format string, a ...any) int {
	fmt.Fprintf(c.stderr, "hookline %s: %s\n", cmd.name, fmt.Sprintf(format, a...))
	return 1
}

// exitFor maps the error of parse to an exit status.
func exitFor(err error) int {
	if errors.Is(err, errHelp) {
		return 0
	}
	return 2
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// parseScheme reads a --scheme value.
func parseScheme(s string) (signing.Scheme, error) {
	switch s {
	case "standard":
		return signing.SchemeStandard, nil
	case "hex":
		return signing.SchemeHex, nil
	case "both":
		return signing.SchemeHex | signing.SchemeStandard, nil
	}
	return 0, fmt.Errorf("--scheme must be standard, hex or both, not %q", s)
}

// schemeName is the --scheme spelling of s.
func schemeName(s signing.Scheme) string {
	switch s {
	case signing.SchemeStandard:
		return "standard"
	case signing.SchemeHex:
		return "hex"
	case signing.SchemeHex | signing.SchemeStandard:
		return "both"
	}
	return s.String()
}

// signerFlags are the flags of commands that sign.
type signerFlags struct {
	secret, secretID, scheme, prefix string
}

func (f *signerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.secret, "secret", "", "signing secret (whsec_... for the standard scheme); default $HOOKLINE_SECRET")
	fs.StringVar(&f.secretID, "secret-id", "", "UUID recorded as the signing secret's id (default the nil UUID)")
	fs.StringVar(&f.scheme, "scheme", "standard", "signature scheme: standard, hex or both")
	fs.StringVar(&f.prefix, "prefix", signing.DefaultPrefix, "header prefix of the hex scheme (<prefix>-Signature)")
}

// signer builds the Signer; a non-nil error is a usage error. required says
// whether a missing secret is an error, else a throwaway one is made.
func (f *signerFlags) signer(required bool) (*signing.Signer, error) {
	text := f.secret
	if text == "" {
		text = env("HOOKLINE_SECRET")
	}
	if text == "" {
		if required {
			return nil, errors.New("--secret (or HOOKLINE_SECRET) is required: the receiver must know it")
		}
		text = signing.GenerateSecret()
	}
	schemes, err := parseScheme(f.scheme)
	if err != nil {
		return nil, err
	}
	id := uuid.Nil
	if f.secretID != "" {
		if id, err = uuid.Parse(f.secretID); err != nil {
			return nil, fmt.Errorf("--secret-id: %v", err)
		}
	}
	secret, err := signing.NewSecret(id, text)
	if err != nil {
		return nil, fmt.Errorf("--secret: %v", err)
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		return nil, err
	}
	s, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: schemes, Prefix: f.prefix})
	if err != nil {
		if errors.Is(err, signing.ErrNotStandardSecret) {
			return nil, fmt.Errorf("--secret (or HOOKLINE_SECRET) is not a whsec_ secret, which --scheme %s needs: use one, or --scheme hex", f.scheme)
		}
		return nil, err
	}
	return s, nil
}

// dbFlags are the flags of commands that use the Postgres store.
type dbFlags struct {
	dsn, schema string
	cfg         *pgxpool.Config // parsed from dsn by check
}

func (f *dbFlags) register(fs *flag.FlagSet, fromEnv bool) {
	if fromEnv {
		fs.StringVar(&f.dsn, "dsn", "", "Postgres connection string; default $HOOKLINE_DATABASE_URL")
	} else {
		fs.StringVar(&f.dsn, "dsn", "", "keep the delivery in this Postgres store instead of memory (HOOKLINE_DATABASE_URL is not read)")
	}
	fs.StringVar(&f.schema, "schema", postgres.DefaultSchema, "schema of the hookline tables")
}

// resolve fills the DSN from the environment; an error is a usage error.
func (f *dbFlags) resolve() error {
	if f.dsn == "" {
		f.dsn = env("HOOKLINE_DATABASE_URL")
	}
	if f.dsn == "" {
		return errors.New("no database: pass --dsn or set HOOKLINE_DATABASE_URL")
	}
	return f.check()
}

// check parses the connection string, and refuses a --schema that no Store
// accepts, before connecting, and an empty one, which the Store would read
// as the default while messages named the empty one; an error is a usage
// error.
func (f *dbFlags) check() error {
	cfg, err := pgxpool.ParseConfig(f.dsn)
	if err != nil {
		return fmt.Errorf("the connection string (--dsn or HOOKLINE_DATABASE_URL) does not parse: %w", err)
	}
	f.cfg = cfg
	if f.schema == "" {
		return fmt.Errorf("--schema is empty; leave it out for the default (%s)", postgres.DefaultSchema)
	}
	if err := postgres.CheckSchema(f.schema); err != nil {
		return fmt.Errorf("--schema: %w", err)
	}
	return nil
}

// connectTimeout bounds connecting to the database.
const connectTimeout = 15 * time.Second

// open connects to the database and returns the Store over it; the caller
// closes the pool. It needs check first. Errors are runtime failures.
func (f *dbFlags) open(ctx context.Context) (*pgxpool.Pool, *postgres.Store, error) {
	if f.cfg == nil {
		if err := f.check(); err != nil {
			return nil, nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, f.cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("connect to the database: %w", err)
	}
	st, err := postgres.New(pool, postgres.Options{Schema: f.schema})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, st, nil
}

// checkMigrated returns an error telling the user to run migrate when the
// schema is behind this hookline.
func checkMigrated(ctx context.Context, st *postgres.Store) error {
	schema := st.Schema()
	v, err := st.Version(ctx)
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if v < postgres.SchemaVersion() {
		return fmt.Errorf("schema %q is at version %d, not %d: run 'hookline migrate --schema %s' first", schema, v, postgres.SchemaVersion(), schema)
	}
	return nil
}

// signalContext is cancelled by SIGINT or SIGTERM. Once it is, the signals
// have their default effect again: a second Ctrl-C ends the process at once,
// whatever the command is still waiting for (unless the process was started
// with SIGINT ignored, as a background job of a script is: then it stays
// ignored).
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// parseBatchID reads the BATCH_ID argument.
func parseBatchID(args []string) (uuid.UUID, error) {
	switch len(args) {
	case 0:
		return uuid.Nil, errors.New("missing BATCH_ID")
	case 1:
	default:
		return uuid.Nil, fmt.Errorf("one BATCH_ID expected, got %d arguments", len(args))
	}
	id, err := uuid.Parse(args[0])
	if err != nil {
		return uuid.Nil, fmt.Errorf("BATCH_ID %q is not a UUID", args[0])
	}
	return id, nil
}
