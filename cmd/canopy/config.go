package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// config is the command line's config file: named contexts, each saying
// where a server is and how to reach it, and the one in use. It never
// holds a token, only the path of a file that does.
type config struct {
	Current  string                 `json:"current,omitempty"`
	Contexts map[string]contextConf `json:"contexts,omitempty"`
}

// contextConf is one named server.
type contextConf struct {
	Addr      string `json:"addr"`
	TokenFile string `json:"token_file,omitempty"`
	TLS       bool   `json:"tls,omitempty"`
	TLSCA     string `json:"tls_ca,omitempty"`
	TLSCert   string `json:"tls_cert,omitempty"`
	TLSKey    string `json:"tls_key,omitempty"`
}

// configPath is CANOPY_CLI_CONFIG, or canopy/config.yaml in the user's
// config folder (~/.config on Linux).
func configPath() (string, error) {
	if p := os.Getenv("CANOPY_CLI_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config file: %w (set CANOPY_CLI_CONFIG)", err)
	}
	return filepath.Join(dir, "canopy", "config.yaml"), nil
}

// loadConfig reads the config file; a missing one is an empty config.
func loadConfig() (config, string, error) {
	var c config
	path, err := configPath()
	if err != nil {
		return c, "", err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, fmt.Errorf("config file: %w", err)
	}
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return c, path, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, path, nil
}

// loadContext reads the config file and requires it to name context name.
func loadContext(name string) (config, string, error) {
	c, path, err := loadConfig()
	if err == nil {
		if _, ok := c.Contexts[name]; !ok {
			err = fmt.Errorf("context %q is not in %s", name, path)
		}
	}
	return c, path, err
}

// saveConfig writes the config file, readable by its owner only.
func saveConfig(c config, path string) error {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return nil
}

// expandHome replaces a leading ~/ with the home folder.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

func (a *app) contextCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "Name servers in the config file and choose the one to use",
		Long: `Contexts name servers, like kubectl's: each has an address and, optionally,
a token file and TLS files. The file is CANOPY_CLI_CONFIG, or
~/.config/canopy/config.yaml. It never holds a token itself.`,
		Example: `  canopy context set prod --addr canopy.internal:7070 --tls --token-file ~/.canopy/prod.token
  canopy context use prod
  canopy context list`,
	}
	var set contextConf
	setCmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create or replace a context",
		Example: `  canopy context set local --addr 127.0.0.1:7070
  canopy context set prod --addr canopy.internal:7070 --tls-ca ca.pem --token-file ~/.canopy/prod.token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, path, err := loadConfig()
			if err != nil {
				return err
			}
			if set.Addr == "" {
				return fmt.Errorf("context %q: --addr is required", args[0])
			}
			if c.Contexts == nil {
				c.Contexts = map[string]contextConf{}
			}
			c.Contexts[args[0]] = set
			if c.Current == "" {
				c.Current = args[0]
			}
			if err := saveConfig(c, path); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "context %s set in %s\n", args[0], path)
			return nil
		},
	}
	// The context's fields are its own flags: the root's --addr and TLS
	// flags say how to connect now, these what to save.
	sf := setCmd.Flags()
	sf.StringVar(&set.Addr, "addr", "", "server address, host:port")
	sf.StringVar(&set.TokenFile, "token-file", "", "file holding the bearer token")
	sf.BoolVar(&set.TLS, "tls", false, "use TLS with the system's CA pool")
	sf.StringVar(&set.TLSCA, "tls-ca", "", "PEM CA bundle to verify the server with")
	sf.StringVar(&set.TLSCert, "tls-cert", "", "PEM client certificate, for mutual TLS")
	sf.StringVar(&set.TLSKey, "tls-key", "", "PEM key of --tls-cert")
	use := &cobra.Command{
		Use:     "use NAME",
		Short:   "Make a context the current one",
		Example: "  canopy context use prod",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, path, err := loadContext(args[0])
			if err != nil {
				return err
			}
			c.Current = args[0]
			return saveConfig(c, path)
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the contexts; the current one is marked *",
		Example: "  canopy context list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := loadConfig()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CURRENT\tNAME\tADDR\tTLS\tTOKEN FILE")
			names := make([]string, 0, len(c.Contexts))
			for n := range c.Contexts {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				cur, x := "", c.Contexts[n]
				if n == c.Current {
					cur = "*"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", cur, n, x.Addr, x.TLS || x.TLSCA != "", x.TokenFile)
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Remove a context",
		Example: "  canopy context delete old",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, path, err := loadContext(args[0])
			if err != nil {
				return err
			}
			delete(c.Contexts, args[0])
			if c.Current == args[0] {
				c.Current = ""
			}
			return saveConfig(c, path)
		},
	}
	cmd.AddCommand(setCmd, use, list, del)
	return cmd
}
