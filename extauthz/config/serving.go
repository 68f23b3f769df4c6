package config

import (
	"crypto/tls"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// TLS serves the grpc and http listeners over TLS (the admin listener stays
// plain). The files are re-read when they change.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first; KeyFile its key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile turns on mutual TLS: every client must present a
	// certificate that chains to one of its PEM certificates.
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// Listeners are the listeners served over TLS, grpc and/or http.
	// Default: every one of the two that is configured.
	Listeners []string `yaml:"listeners"`
}

// Version returns MinVersion as a crypto/tls constant.
func (t *TLS) Version() uint16 {
	if t.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// TLSFor returns the TLS settings of the listener "grpc" or "http", or nil
// when that listener is served plain.
func (l Listen) TLSFor(listener string) *TLS {
	if l.TLS != nil && slices.Contains(l.TLS.Listeners, listener) {
		return l.TLS
	}
	return nil
}

// SocketMode is the permission of unix sockets, written as an octal
// string, e.g. "0660".
type SocketMode string

var octalMode = regexp.MustCompile(`^0?[0-7]{3}$`)

// UnmarshalYAML accepts only a string: an unquoted 0660 would be read as
// a YAML number and could silently mean something else.
func (m *SocketMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return fmt.Errorf("line %d: listen.socket_mode: expected an octal mode in quotes, such as \"0660\"", n.Line)
	}
	*m = SocketMode(n.Value)
	return nil
}

// Perm returns the mode's permission bits; Parse has validated it.
func (m SocketMode) Perm() fs.FileMode {
	v, _ := strconv.ParseUint(string(m), 8, 32)
	return fs.FileMode(v).Perm()
}

// Limits bound what one request may cost.
type Limits struct {
	// GRPCMaxReceiveBytes is the largest CheckRequest accepted over gRPC.
	GRPCMaxReceiveBytes int `yaml:"grpc_max_receive_bytes"`
	// GRPCMaxConcurrentStreams is the most Checks in flight on one gRPC
	// connection; the client queues the rest.
	GRPCMaxConcurrentStreams int `yaml:"grpc_max_concurrent_streams"`
	// MaxHeaders and MaxHeaderBytes bound the request headers (count, and
	// total bytes of names and values) copied into the policy input; a
	// request over either is denied.
	MaxHeaders     int `yaml:"max_headers"`
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// RequestBody, when set, copies the request body (Envoy's
	// with_request_body) into the policy input; when nil it is left out.
	RequestBody *RequestBody `yaml:"request_body"`
	// CheckTimeout bounds one Check when the caller's deadline is later or
	// absent.
	CheckTimeout Duration `yaml:"check_timeout"`
}

// RequestBody says how much of the request body the policy may see.
type RequestBody struct {
	// MaxBytes is the largest body copied; a larger one is denied.
	MaxBytes int `yaml:"max_bytes"`
}

// Defaults and bounds of listen and limits.
const (
	DefaultSocketMode          = SocketMode("0660")
	DefaultGRPCMaxReceiveBytes = 4 << 20 // gRPC's own default
	DefaultGRPCMaxStreams      = 1024
	DefaultMaxHeaders          = 200 // Envoy's max_headers_count is 100, plus what Envoy adds
	DefaultMaxHeaderBytes      = 64 << 10
	DefaultRequestBodyBytes    = 8 << 10
	DefaultCheckTimeout        = 10 * time.Second
)

func (c *Config) setListenDefaults(dir string) {
	if t := c.Listen.TLS; t != nil {
		t.CertFile = resolve(dir, t.CertFile)
		t.KeyFile = resolve(dir, t.KeyFile)
		t.ClientCAFile = resolve(dir, t.ClientCAFile)
		if t.MinVersion == "" {
			t.MinVersion = "1.2"
		}
		if t.Listeners == nil {
			for _, l := range []struct{ name, addr string }{{"grpc", c.Listen.GRPC}, {"http", c.Listen.HTTP}} {
				if l.addr != "" {
					t.Listeners = append(t.Listeners, l.name)
				}
			}
		}
	}
	l := &c.Limits
	if l.GRPCMaxReceiveBytes == 0 {
		l.GRPCMaxReceiveBytes = DefaultGRPCMaxReceiveBytes
	}
	if l.GRPCMaxConcurrentStreams == 0 {
		l.GRPCMaxConcurrentStreams = DefaultGRPCMaxStreams
	}
	if l.MaxHeaders == 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxHeaderBytes == 0 {
		// Room for the largest token allowed, and the other headers.
		l.MaxHeaderBytes = max(DefaultMaxHeaderBytes, c.Token.MaxSize+8<<10)
	}
	if b := l.RequestBody; b != nil && b.MaxBytes == 0 {
		b.MaxBytes = DefaultRequestBodyBytes
	}
	if l.CheckTimeout == 0 {
		l.CheckTimeout = Duration(DefaultCheckTimeout)
	}
}

// SocketPerm is the permission of unix sockets claimcheck creates.
func (l Listen) SocketPerm() fs.FileMode {
	if l.SocketMode == "" {
		return DefaultSocketMode.Perm()
	}
	return l.SocketMode.Perm()
}

func (c *Config) validateListenExtras(p *problems) {
	if m := c.Listen.SocketMode; m != "" {
		if !octalMode.MatchString(string(m)) {
			p.add("listen.socket_mode", "expected an octal permission such as \"0660\", got %q", m)
		}
		if !slices.ContainsFunc([]string{c.Listen.GRPC, c.Listen.HTTP, c.Listen.Admin}, func(a string) bool { return strings.HasPrefix(a, "unix://") }) {
			p.add("listen.socket_mode", "applies only to unix:// listeners")
		}
	}
	if t := c.Listen.TLS; t != nil {
		if t.CertFile == "" {
			p.add("listen.tls.cert_file", "expected the PEM certificate file")
		}
		if t.KeyFile == "" {
			p.add("listen.tls.key_file", "expected the PEM private key file")
		}
		validateFile(p, "listen.tls.cert_file", t.CertFile)
		validateFile(p, "listen.tls.key_file", t.KeyFile)
		validateFile(p, "listen.tls.client_ca_file", t.ClientCAFile)
		if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
			p.add("listen.tls.min_version", "expected \"1.2\" or \"1.3\", got %q", t.MinVersion)
		}
		if len(t.Listeners) == 0 {
			p.add("listen.tls.listeners", "expected grpc and/or http")
		}
		addrs := map[string]string{"grpc": c.Listen.GRPC, "http": c.Listen.HTTP}
		for i, name := range t.Listeners {
			field := fmt.Sprintf("listen.tls.listeners[%d]", i)
			addr, known := addrs[name]
			switch {
			case !known:
				p.add(field, "expected grpc or http (the admin listener is always plain), got %q", name)
			case addr == "":
				p.add(field, "listen.%s is not configured", name)
			case slices.Index(t.Listeners, name) != i:
				p.add(field, "%s is listed twice", name)
			}
		}
	}

	l := c.Limits
	if n := l.GRPCMaxReceiveBytes; n < 64<<10 || n > 64<<20 {
		p.add("limits.grpc_max_receive_bytes", "expected 65536 to 67108864 bytes, got %d", n)
	}
	if n := l.GRPCMaxConcurrentStreams; n < 1 || n > 1_000_000 {
		p.add("limits.grpc_max_concurrent_streams", "expected 1 to 1000000, got %d", n)
	}
	if n := l.MaxHeaders; n < 16 || n > 10_000 {
		p.add("limits.max_headers", "expected 16 to 10000 headers, got %d", n)
	}
	if n := l.MaxHeaderBytes; n < 4<<10 || n > 8<<20 {
		p.add("limits.max_header_bytes", "expected 4096 to 8388608 bytes, got %d", n)
	} else if c.Token.MaxSize > n {
		p.add("limits.max_header_bytes", "%d bytes cannot carry a token of token.max_size (%d bytes); raise it or lower token.max_size", n, c.Token.MaxSize)
	}
	if b := l.RequestBody; b != nil {
		if b.MaxBytes < 1 || b.MaxBytes > 16<<20 {
			p.add("limits.request_body.max_bytes", "expected 1 to 16777216 bytes, got %d", b.MaxBytes)
		} else if b.MaxBytes+l.MaxHeaderBytes > l.GRPCMaxReceiveBytes {
			p.add("limits.request_body.max_bytes", "a body of %d bytes with %d bytes of headers does not fit in limits.grpc_max_receive_bytes (%d)",
				b.MaxBytes, l.MaxHeaderBytes, l.GRPCMaxReceiveBytes)
		}
	}
	if d := time.Duration(l.CheckTimeout); d < 10*time.Millisecond || d > time.Minute {
		p.add("limits.check_timeout", "expected a duration from 10ms to 1m, got %s", d)
	}
}
