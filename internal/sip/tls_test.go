package sip

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/test/peers"
)

// With RequireClientCert the TLS listener completes a handshake only with a
// caller presenting a certificate signed by CAFile; MinVersion 1.3 refuses
// a TLS 1.2 client.
func TestTLSListenerClientAuthAndMinVersion(t *testing.T) {
	ca := peers.NewTestCA(t, "callctl-test")
	srv, client := ca.Issue(t, "callctl", 100), ca.Issue(t, "phone", 200)
	stranger := peers.NewTestCA(t, "someone-else").Issue(t, "stranger", 300)
	a, err := NewAgent(Config{
		Listen:     "127.0.0.1:0",
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TLS: TLSConfig{Listen: "127.0.0.1:0", CertFile: srv.CertFile, KeyFile: srv.KeyFile, CAFile: ca.CAFile,
			MinVersion: tls.VersionTLS13, RequireClientCert: true},
	}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Serve()
	t.Cleanup(func() { a.Close(); a.Wait() })

	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	handshake := func(leaf *peers.Leaf, maxVersion uint16) error {
		conf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, MaxVersion: maxVersion}
		if leaf != nil {
			cert, err := tls.LoadX509KeyPair(leaf.CertFile, leaf.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{cert}
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", a.TLSAddr(), conf)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3: the server's verdict on the client certificate comes
		// with the first read.
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	}
	if err := handshake(&client, 0); err != nil {
		t.Errorf("a caller with a certificate of sip.tls.ca_file was refused: %v", err)
	}
	if err := handshake(nil, 0); err == nil {
		t.Error("a caller without a certificate was served; want the handshake refused")
	}
	if err := handshake(&stranger, 0); err == nil {
		t.Error("a caller with a certificate of another CA was served; want the handshake refused")
	}
	if err := handshake(&client, tls.VersionTLS12); err == nil {
		t.Error("a TLS 1.2 caller was served with MinVersion 1.3; want the handshake refused")
	}
}

// A client that connects to the TLS listener and never starts the
// handshake is disconnected once tlsHandshakeTimeout has passed; a client
// that does handshake is served after it.
func TestTLSListenerClosesConnectionsThatNeverHandshake(t *testing.T) {
	old := tlsHandshakeTimeout
	tlsHandshakeTimeout = 300 * time.Millisecond
	t.Cleanup(func() { tlsHandshakeTimeout = old })
	ca := peers.NewTestCA(t, "callctl-test")
	srv := ca.Issue(t, "callctl", 100)
	a, err := NewAgent(Config{
		Listen:     "127.0.0.1:0",
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TLS:        TLSConfig{Listen: "127.0.0.1:0", CertFile: srv.CertFile, KeyFile: srv.KeyFile},
	}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Serve()
	t.Cleanup(func() { a.Close(); a.Wait() })

	silent, err := net.Dial("tcp", a.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("a silent client's connection got data; want it closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a silent client's connection was still open after 5 s; want it closed after the handshake timeout")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("the silent client was closed after %s, before the handshake timeout", d)
	}

	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", a.TLSAddr(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("a TLS client after the silent one: %v", err)
	}
	c.Close()
}
