package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
)

// SIP over TLS settings (sip.tls).
var (
	tlsVersions    = []string{"1.2", "1.3"}
	tlsClientAuths = []string{"none", "require"}
)

// TLSVersion is the crypto/tls constant for a sip.tls.min_version value
// ("1.2" when empty or unknown; Validate refuses unknown ones).
func TLSVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// UsesTLS reports whether any B leg goes over TLS (trunk.transport or a
// route's transport is tls).
func (c Config) UsesTLS() bool {
	if strings.EqualFold(c.Trunk.Transport, "tls") {
		return true
	}
	for _, r := range c.Routes {
		if strings.EqualFold(r.Transport, "tls") {
			return true
		}
	}
	return false
}

// sipTLS checks sip.tls, reading the files it names: a certificate that
// cannot be used is an error at start, naming the key, not a failed
// handshake on the first call.
func (v *validator) sipTLS(c Config) {
	t := c.SIP.TLS
	if t.Listen != "" {
		v.listenAddr("sip.tls.listen", t.Listen)
		if t.CertFile == "" {
			v.add("sip.tls.cert_file", "empty while sip.tls.listen is set; give the PEM certificate callctl presents to TLS callers")
		}
		if t.KeyFile == "" {
			v.add("sip.tls.key_file", "empty while sip.tls.listen is set; give the PEM private key of sip.tls.cert_file")
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.add("sip.tls.key_file", "empty while sip.tls.cert_file is set; set both or neither")
	case t.CertFile == "" && t.KeyFile != "":
		v.add("sip.tls.cert_file", "empty while sip.tls.key_file is set; set both or neither")
	case t.CertFile != "":
		v.keyPair("sip.tls", t.CertFile, t.KeyFile)
	}
	if t.CAFile != "" {
		v.caFile("sip.tls.ca_file", t.CAFile)
	}
	if !oneOf(t.MinVersion, tlsVersions) {
		v.add("sip.tls.min_version", "%q is not a TLS version (allowed: %s)", t.MinVersion, strings.Join(tlsVersions, ", "))
	}
	if !oneOf(t.ClientAuth, tlsClientAuths) {
		v.add("sip.tls.client_auth", "%q is not a client certificate policy (allowed: %s)", t.ClientAuth, strings.Join(tlsClientAuths, ", "))
	} else if t.ClientAuth == "require" && t.CAFile == "" {
		v.add("sip.tls.ca_file", "empty while sip.tls.client_auth is require; give the CAs that sign the callers' certificates")
	}
}

// keyPair checks that both PEM files are readable and that the key is the
// certificate's; errors name section+".cert_file" or section+".key_file".
func (v *validator) keyPair(section, certFile, keyFile string) {
	certKey, keyKey := section+".cert_file", section+".key_file"
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		v.add(certKey, "%v", err)
	}
	keyPEM, kerr := os.ReadFile(keyFile)
	if kerr != nil {
		v.add(keyKey, "%v", kerr)
	}
	if err != nil || kerr != nil {
		return
	}
	if msg := certProblem(certPEM); msg != "" {
		v.add(certKey, "%s: %s", certFile, msg)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		// The certificate parsed: what is wrong is the key, or that it
		// is not the certificate's.
		v.add(keyKey, "%s (for %s): %v", keyFile, certFile, err)
	}
}

// caFile checks that the PEM file at path (the value of key) is readable
// and holds at least one certificate.
func (v *validator) caFile(key, path string) {
	pem, err := os.ReadFile(path)
	switch {
	case err != nil:
		v.add(key, "%v", err)
	case !x509.NewCertPool().AppendCertsFromPEM(pem):
		v.add(key, "%s holds no PEM certificate", path)
	}
}

// certProblem says what keeps a PEM certificate file from being used, or
// "" when its first certificate parses.
func certProblem(data []byte) string {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return "no PEM CERTIFICATE block in it"
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "its certificate does not parse: " + err.Error()
		}
		return ""
	}
}
