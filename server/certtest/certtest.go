// Package certtest makes a certificate authority for tests and the
// certificates it signs, written as PEM files in a temporary folder.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority valid for an hour around its making.
type CA struct {
	Dir    string            // where its files are
	Cert   *x509.Certificate // its certificate
	CAFile string            // its certificate, as PEM
	key    *ecdsa.PrivateKey
}

// New makes a CA in a temporary folder of tb.
func New(tb testing.TB) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "canopy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &CA{Dir: tb.TempDir(), Cert: cert, key: key}
	ca.CAFile = ca.write(tb, "ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *CA) write(tb testing.TB, name, typ string, der []byte) string {
	tb.Helper()
	path := filepath.Join(ca.Dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Issue writes a certificate for name (and 127.0.0.1), for the usages
// given, and its key, and returns their paths.
func (ca *CA) Issue(tb testing.TB, name string, usage ...x509.ExtKeyUsage) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: usage, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return ca.write(tb, name+".pem", "CERTIFICATE", der), ca.write(tb, name+"-key.pem", "EC PRIVATE KEY", kder)
}

// Pool is a certificate pool holding the CA alone, for clients to trust.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Client issues a client certificate for name and returns a TLS client
// configuration that presents it and trusts the CA.
func (ca *CA) Client(tb testing.TB, name string) *tls.Config {
	tb.Helper()
	pair, err := tls.LoadX509KeyPair(ca.Issue(tb, name, x509.ExtKeyUsageClientAuth))
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair}}
}
