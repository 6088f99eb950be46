package sip

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// SIP over TLS (RFC 3261 26.2, 18: transport "TLS", port 5061 by default).
// The listener takes TLS connections on its own port; what arrives on them
// goes through the same intake as TCP (intake.go, framer.go: sipgo's read
// filter sees the decrypted stream with transport "TLS"). Toward trunks and
// routes with transport tls callctl verifies the peer's certificate against
// CAFile (or the system roots) and ServerName (or the host it dials), and
// presents its own certificate when the peer asks for one. The certificate
// is read from PEM files and can be reloaded (ReloadCertificate, on SIGHUP)
// without dropping a connection: new handshakes get the new one.

// TLSConfig configures SIP over TLS.
type TLSConfig struct {
	// Listen is the host:port of the TLS listener; empty means none.
	Listen string
	// CertFile and KeyFile are the PEM certificate (chain) and key callctl
	// presents, as a server and, when asked, as a client.
	CertFile string
	KeyFile  string
	// CAFile is a PEM bundle of the CAs that sign the certificates of the
	// peers callctl dials over TLS; empty means the system roots.
	CAFile string
	// ServerName is the name expected in those peers' certificates; empty
	// means the host dialled (an IP address is checked against IP SANs).
	ServerName string
	// MinVersion is the lowest TLS version (tls.VersionTLS12 when 0).
	MinVersion uint16
	// RequireClientCert makes the listener ask TLS callers for a
	// certificate signed by CAFile and refuse the handshake without one.
	RequireClientCert bool
}

// certStore holds the certificate in use; handshakes read it atomically.
type certStore struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func (s *certStore) load() error {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("sip.tls.cert_file/sip.tls.key_file: %w", err)
	}
	s.cert.Store(&cert)
	return nil
}

func (s *certStore) get() (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no certificate loaded")
}

// newTLS loads the certificate and builds the server and client TLS
// configurations. A config without a certificate can still dial TLS peers
// (as a client without a certificate of its own).
func newTLS(cfg TLSConfig) (*certStore, *tls.Config, *tls.Config, error) {
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	client := &tls.Config{MinVersion: cfg.MinVersion, ServerName: cfg.ServerName}
	var pool *x509.CertPool
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("sip.tls.ca_file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, nil, fmt.Errorf("sip.tls.ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
		client.RootCAs = pool
	}
	if cfg.CertFile == "" {
		return nil, nil, client, nil
	}
	store := &certStore{certFile: cfg.CertFile, keyFile: cfg.KeyFile}
	if err := store.load(); err != nil {
		return nil, nil, nil, err
	}
	client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return store.get() }
	server := &tls.Config{
		MinVersion:     cfg.MinVersion,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return store.get() },
	}
	if cfg.RequireClientCert {
		if pool == nil {
			return nil, nil, nil, errors.New("sip.tls.client_auth require needs sip.tls.ca_file")
		}
		server.ClientAuth = tls.RequireAndVerifyClientCert
		server.ClientCAs = pool
	}
	return store, server, client, nil
}

// listenTLS binds the TLS listener.
func listenTLS(addr string, conf *tls.Config) (net.Listener, error) {
	if conf == nil {
		return nil, errors.New("sip.tls.listen needs sip.tls.cert_file and sip.tls.key_file")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sip.tls.listen %s: %w", addr, err)
	}
	return handshakeListener{tls.NewListener(l, conf)}, nil
}

// tlsHandshakeTimeout bounds a TLS caller's handshake: a connection that
// does not complete it in time (a client that connects and says nothing)
// is closed rather than held open forever. A variable for tests.
var tlsHandshakeTimeout = 10 * time.Second

// handshakeListener hands sipgo connections whose first Read completes the
// TLS handshake within tlsHandshakeTimeout (sipgo reads each connection on
// its own goroutine, so a slow handshake holds up no other).
type handshakeListener struct{ net.Listener }

func (l handshakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: c.(*tls.Conn)}, nil
}

type handshakeConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		_ = c.Conn.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
		if c.err = c.Conn.Handshake(); c.err == nil {
			c.err = c.Conn.SetDeadline(time.Time{})
		}
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// ReloadCertificate reads sip.tls.cert_file and key_file again: handshakes
// from now on present the new certificate; connections already up keep
// theirs. On error the old certificate stays in use. Without TLS it does
// nothing.
func (a *Agent) ReloadCertificate() error {
	if a.certs == nil {
		return nil
	}
	return a.certs.load()
}

// TLSAddr is the host:port of the TLS listener, or "" without one.
func (a *Agent) TLSAddr() string {
	if a.tlsPort == 0 {
		return ""
	}
	return net.JoinHostPort(a.host, fmt.Sprint(a.tlsPort))
}

// contactHeader is callctl's Contact on this leg: a sips: URI on a sips:
// dialog (RFC 3261 8.1.1.8 and 12.1.1: the Contact of a dialog whose
// request was sips: is sips:; 26.2.2: no transport parameter needed, TLS is
// implied and reaches the TLS listener's port), else the transport's.
func (l *Leg) contactHeader() *gosip.ContactHeader {
	c := l.agent.contact(l.transport)
	if l.sips {
		c.Address.Scheme = "sips"
		c.Address.UriParams = nil
	}
	return c
}

// IsSIPS reports whether the leg's dialog is sips: (its INVITE's
// Request-URI was), so every hop must be TLS.
func (l *Leg) IsSIPS() bool { return l.sips }

// ErrSIPSNeedsTLS is Dial's error for a sips: target on a transport other
// than TLS (RFC 3261 26.2.2).
var ErrSIPSNeedsTLS = errors.New("sip: a sips: target needs transport tls")
