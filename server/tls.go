package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"
)

// TLSFiles is the server's TLS, read from PEM files: its certificate and
// key, and, for mutual TLS, the CA bundle that client certificates must
// chain to. Reload reads them again; each new connection's handshake uses
// what was read last.
type TLSFiles struct {
	certFile, keyFile, clientCAFile string
	cur                             atomic.Pointer[tls.Config] // replaced whole by Reload
}

// LoadTLS reads the PEM files (clientCAFile empty: clients are not asked
// for a certificate).
func LoadTLS(certFile, keyFile, clientCAFile string) (*TLSFiles, error) {
	f := &TLSFiles{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Config is the configuration to serve with: every handshake takes the
// files as last read.
func (f *TLSFiles) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return f.cur.Load(), nil
	}}
}

// Reload reads the files again. When one cannot be read or holds no
// usable certificate, the configuration stays as it was and the error
// says why.
func (f *TLSFiles) Reload() error {
	cfg, err := TLSConfig(f.certFile, f.keyFile, f.clientCAFile)
	if err != nil {
		return err
	}
	f.cur.Store(cfg)
	return nil
}

// TLSConfig builds the server's TLS configuration from PEM files: its
// certificate and key, and, for mutual TLS, the CA bundle that client
// certificates must chain to (empty: clients are not asked for one).
func TLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s holds no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
