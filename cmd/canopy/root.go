package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"

	"github.com/canopy-authz/canopy/client"
)

// app is what every command shares: where to connect, how to print, and
// the streams to read and write.
type app struct {
	conn    connection
	output  string // table, json or yaml
	timeout time.Duration
	atLeast uint64
	full    bool
	in      io.Reader
	out     io.Writer
	err     io.Writer
	cl      *client.Client // made on first use
	cancels []context.CancelFunc
}

// execute runs the command line args and returns the exit code.
func execute(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	a := &app{in: in, out: out, err: errOut}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	err := root.ExecuteContext(ctx)
	for _, cancel := range a.cancels {
		cancel()
	}
	if a.cl != nil {
		a.cl.Close()
	}
	return exitCode(err, errOut)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "canopy",
		Short: "Canopy's command line: organisations, decisions and change streams of a canopyd",
		Long: `canopy reads and changes the organisations a canopyd holds, asks it for
decisions and explanations, and follows its change streams.

It connects to --addr (or CANOPY_ADDR, or the current context of the
config file; 127.0.0.1:7070 by default). A token comes from CANOPY_TOKEN,
--token-file or the context, never from the command line unless --token
is given on purpose.

Exit codes: 0 success (for check: allowed), 1 a "no" (check denied),
2 an error, printed as one line naming the offending id.`,
		Example: `  canopy status
  canopy folders tree acme
  canopy check tom edit user/carl
  canopy explain ian read user/carl`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.conn.addr, "addr", "", "server address, host:port (env CANOPY_ADDR)")
	f.StringVar(&a.conn.context, "context", "", "the context of the config file to use (env CANOPY_CONTEXT)")
	f.StringVar(&a.conn.tokenFile, "token-file", "", "file holding the bearer token (env CANOPY_TOKEN_FILE)")
	f.StringVar(&a.conn.token, "token", "", "bearer token; visible to anyone who can list processes: prefer CANOPY_TOKEN or --token-file")
	f.StringVar(&a.conn.tlsCA, "tls-ca", "", "PEM CA bundle to verify the server with; turns TLS on (env CANOPY_TLS_CA)")
	f.StringVar(&a.conn.tlsCert, "tls-cert", "", "PEM client certificate, for mutual TLS (env CANOPY_TLS_CERT)")
	f.StringVar(&a.conn.tlsKey, "tls-key", "", "PEM key of --tls-cert (env CANOPY_TLS_KEY)")
	f.BoolVar(&a.conn.tls, "tls", false, "use TLS with the system's CA pool (env CANOPY_TLS=1)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "deadline of each call (streams that follow changes have none)")
	f.Uint64Var(&a.atLeast, "at-least-revision", 0, "read at this revision or later (the server waits for it)")
	f.BoolVar(&a.full, "fully-consistent", false, "read at the newest committed revision")
	root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch a.output {
		case "table", "json", "yaml":
			return nil
		}
		return fmt.Errorf("output %q: want table, json or yaml", a.output)
	}
	root.AddGroup(&cobra.Group{ID: "dir", Title: "Directory:"}, &cobra.Group{ID: "code", Title: "Organisations as code:"}, &cobra.Group{ID: "access", Title: "Access:"},
		&cobra.Group{ID: "watch", Title: "Change streams and the audit trail:"}, &cobra.Group{ID: "server", Title: "Server and configuration:"})
	for _, c := range []*cobra.Command{a.foldersCommand(), a.usersCommand(), a.grantsCommand(), a.locksCommand(), a.rulesCommand(), a.rightsCommand()} {
		c.GroupID = "dir"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.exportCommand(), a.diffCommand(), a.applyCommand(), a.validateCommand()} {
		c.GroupID = "code"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.checkCommand(), a.batchCheckCommand(), a.explainCommand(), a.lookupResourcesCommand(), a.lookupSubjectsCommand(), a.accessCommand()} {
		c.GroupID = "access"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.watchCommand(), a.watchAccessCommand(), a.historyCommand()} {
		c.GroupID = "watch"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.statusCommand(), a.backupCommand(), a.versionCommand(), a.contextCommand()} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
	root.SetCompletionCommandGroupID("server")
	root.SetHelpCommandGroupID("server")
	return root
}

// connection says where and how to connect.
type connection struct {
	addr, context, tokenFile, token string
	tlsCA, tlsCert, tlsKey          string
	tls                             bool
}

// resolve fills what the flags left empty from the environment, then from
// the config file's context.
func (c *connection) resolve() error {
	env := func(dst *string, key string) {
		if *dst == "" {
			*dst = os.Getenv(key)
		}
	}
	env(&c.addr, "CANOPY_ADDR")
	env(&c.context, "CANOPY_CONTEXT")
	env(&c.token, "CANOPY_TOKEN")
	env(&c.tokenFile, "CANOPY_TOKEN_FILE")
	env(&c.tlsCA, "CANOPY_TLS_CA")
	env(&c.tlsCert, "CANOPY_TLS_CERT")
	env(&c.tlsKey, "CANOPY_TLS_KEY")
	if !c.tls && os.Getenv("CANOPY_TLS") == "1" {
		c.tls = true
	}
	cfg, path, err := loadConfig()
	if err != nil {
		return err
	}
	name := c.context
	if name == "" {
		name = cfg.Current
	}
	if name != "" {
		ctx, ok := cfg.Contexts[name]
		if !ok {
			return fmt.Errorf("context %q is not in %s", name, path)
		}
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		fill(&c.addr, ctx.Addr)
		fill(&c.tokenFile, ctx.TokenFile)
		fill(&c.tlsCA, ctx.TLSCA)
		fill(&c.tlsCert, ctx.TLSCert)
		fill(&c.tlsKey, ctx.TLSKey)
		c.tls = c.tls || ctx.TLS
	}
	if c.addr == "" {
		c.addr = "127.0.0.1:7070"
	}
	return nil
}

// dial connects as the connection says.
func (c *connection) dial() (*client.Client, error) {
	if err := c.resolve(); err != nil {
		return nil, err
	}
	var opts []client.Option
	token := c.token
	if token == "" && c.tokenFile != "" {
		raw, err := os.ReadFile(expandHome(c.tokenFile))
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(raw))
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	if c.tls || c.tlsCA != "" || c.tlsCert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.tlsCA != "" {
			pem, err := os.ReadFile(expandHome(c.tlsCA))
			if err != nil {
				return nil, fmt.Errorf("TLS CA: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("TLS CA %s: no PEM certificate in it", c.tlsCA)
			}
		}
		if c.tlsCert != "" || c.tlsKey != "" {
			cert, err := tls.LoadX509KeyPair(expandHome(c.tlsCert), expandHome(c.tlsKey))
			if err != nil {
				return nil, fmt.Errorf("TLS client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, client.WithTLS(credentials.NewTLS(cfg)))
	}
	return client.Dial(c.addr, opts...)
}

// client returns the connection to the server, made on first use.
func (a *app) client() (*client.Client, error) {
	if a.cl == nil {
		cl, err := a.conn.dial()
		if err != nil {
			return nil, err
		}
		a.cl = cl
	}
	return a.cl, nil
}

// call returns the client and a context bounded by --timeout, valid
// until the command line has run (execute cancels it).
func (a *app) call(cmd *cobra.Command) (*client.Client, context.Context, error) {
	cl, err := a.client()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	a.cancels = append(a.cancels, cancel)
	return cl, ctx, nil
}

// readFor is what the read flags ask for, and, with --as-user, reading
// on behalf of that user (the directory's gets and lists).
func (a *app) readFor(cmd *cobra.Command) []client.ReadOption {
	opts := a.read()
	if u, _ := cmd.Flags().GetString("as-user"); u != "" {
		opts = append(opts, client.ReadAs(u))
	}
	return opts
}

// read is the consistency the read flags ask for.
func (a *app) read() []client.ReadOption {
	switch {
	case a.full:
		return []client.ReadOption{client.FullyConsistent()}
	case a.atLeast > 0:
		return []client.ReadOption{client.AtLeast(a.atLeast)}
	}
	return nil
}
