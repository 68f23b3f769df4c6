package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/claimcheck/claimcheck/extauthz/token"
	"github.com/claimcheck/claimcheck/extauthz/urlpath"
)

// viaProtojson is the reference for protoTerm: protojson.Marshal, decoded
// with json.Number, through ast.InterfaceToValue (the old input path).
func viaProtojson(t *testing.T, m proto.Message) ast.Value {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatalf("protojson: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func socket(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// fullRequests are CheckRequests using every part of the attributes.
func fullRequests(t *testing.T) map[string]*authv3.CheckRequest {
	t.Helper()
	meta, err := structpb.NewStruct(map[string]any{
		"s": "v", "n": 1.5, "i": 42.0, "big": 1e21, "tiny": 1e-7, "neg": -3.0, "zero": 0.0, "b": true, "null": nil,
		"list":   []any{"a", 2.0, false, nil, map[string]any{"k": "v"}, []any{}},
		"nested": map[string]any{"empty": map[string]any{}, "deep": map[string]any{"x": []any{1.0}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	typed, err := anypb.New(wrapperspb.String("typed"))
	if err != nil {
		t.Fatal(err)
	}
	full := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address:     socket("10.0.0.7", 41000),
			Service:     "checkout",
			Labels:      map[string]string{"app": "checkout", "version": "v2"},
			Principal:   "spiffe://cluster.local/ns/shop/sa/checkout",
			Certificate: "-----BEGIN%20CERTIFICATE-----%0AMIIB...%0A-----END%20CERTIFICATE-----%0A",
		},
		Destination: &authv3.AttributeContext_Peer{
			Address:   &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock", Mode: 0o600}}},
			Principal: "spiffe://cluster.local/ns/shop/sa/orders",
		},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Date(2026, 3, 1, 12, 30, 45, 123_000_000, time.UTC)),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "req-1", Method: "POST", Path: "/orders/a%2Fb?x=1&x=2", Host: "orders.internal", Scheme: "https",
				Protocol: "HTTP/2", Query: "x=1&x=2", Fragment: "frag", Size: 1 << 40,
				Headers: map[string]string{"authorization": "Bearer abc", "x-unicode": "héllo ✓", "x-quote": `"\<>&`},
				Body:    `{"a":1}`, RawBody: []byte{0, 1, 2, 0xff, 'x'},
			},
		},
		ContextExtensions: map[string]string{"route": "orders", ExtDecision: "orders/allow"},
		MetadataContext: &corev3.Metadata{
			FilterMetadata:      map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": meta, "empty": {}},
			TypedFilterMetadata: map[string]*anypb.Any{"typed": typed},
		},
		RouteMetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"r": meta}},
		TlsSession:           &authv3.AttributeContext_TLSSession{Sni: "orders.example.com"},
	}}

	rawHeaders := httpRequest("GET", "/raw", nil)
	rawHeaders.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "Authorization", RawValue: []byte("Bearer good")},
		{Key: "x-multi", RawValue: []byte("a")},
		{Key: "x-multi", RawValue: []byte("b")},
		{Key: "x-old", Value: "plain"},
	}}
	rawHeaders.Attributes.Request.Time = timestamppb.New(time.Unix(0, 1))
	rawHeaders.Attributes.Source.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol: corev3.SocketAddress_UDP, Address: "::1", ResolverName: "r",
		PortSpecifier: &corev3.SocketAddress_NamedPort{NamedPort: "https"}}}}

	return map[string]*authv3.CheckRequest{
		"full":        full,
		"plain":       httpRequest("GET", "/orders/42?verbose=true", bearer("x")),
		"raw headers": rawHeaders,
		"empty http":  {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{}}}},
		"no attrs":    {},
	}
}

func TestProtoTermMatchesProtojson(t *testing.T) {
	for name, req := range fullRequests(t) {
		t.Run(name, func(t *testing.T) {
			want := viaProtojson(t, req.GetAttributes())
			got, err := attributesTerm(req.GetAttributes())
			if err != nil {
				t.Fatal(err)
			}
			if got.Value.Compare(want) != 0 {
				t.Errorf("protoTerm =\n%v\nprotojson =\n%v", got, want)
			}
		})
	}
}

// TestProtoTermWellKnownTypes covers what AttributeContext does not use:
// Duration, wrappers, Empty, FieldMask, special floats, proto2 fields and
// every scalar kind.
func TestProtoTermWellKnownTypes(t *testing.T) {
	lv, _ := structpb.NewList([]any{1.0, "x", nil})
	nested := &descriptorpb.DescriptorProto{
		Name: proto.String("M"),
		Field: []*descriptorpb.FieldDescriptorProto{{
			Name: proto.String("f"), Number: proto.Int32(1), JsonName: proto.String("f"),
			Label: descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(),
		}},
		Options: &descriptorpb.MessageOptions{Deprecated: proto.Bool(false)},
	}
	msgs := []proto.Message{
		durationpb.New(0), durationpb.New(1500 * time.Millisecond), durationpb.New(-time.Nanosecond),
		durationpb.New(-90 * time.Second), &durationpb.Duration{Seconds: 3, Nanos: 120_000},
		timestamppb.New(time.Unix(0, 0)), timestamppb.New(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)),
		timestamppb.New(time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)),
		wrapperspb.Bool(false), wrapperspb.Bool(true), wrapperspb.Int32(-7), wrapperspb.Int64(0),
		wrapperspb.Int64(math.MinInt64), wrapperspb.UInt32(math.MaxUint32), wrapperspb.UInt64(math.MaxUint64),
		wrapperspb.Float(0), wrapperspb.Float(1.1), wrapperspb.Float(3e-7), wrapperspb.Float(2e21),
		wrapperspb.Float(float32(math.Inf(-1))), wrapperspb.Double(math.NaN()), wrapperspb.Double(math.Inf(1)),
		wrapperspb.Double(0.1), wrapperspb.Double(1e-7), wrapperspb.Double(1e21), wrapperspb.Double(123456789012345678),
		wrapperspb.Double(-2.5e-300), wrapperspb.String(""), wrapperspb.Bytes([]byte("hi?>")),
		&emptypb.Empty{}, &fieldmaskpb.FieldMask{Paths: []string{"a.b_c", "d"}},
		structpb.NewNullValue(), structpb.NewBoolValue(true), structpb.NewNumberValue(-0.5), structpb.NewListValue(lv), lv,
		&structpb.Struct{},
		&descriptorpb.UninterpretedOption{
			Name:             []*descriptorpb.UninterpretedOption_NamePart{{NamePart: proto.String("p"), IsExtension: proto.Bool(true)}},
			PositiveIntValue: proto.Uint64(math.MaxUint64), NegativeIntValue: proto.Int64(-1), DoubleValue: proto.Float64(0),
			StringValue: []byte{}, AggregateValue: proto.String(""),
		},
		&descriptorpb.FileDescriptorProto{
			Name: proto.String("x.proto"), MessageType: []*descriptorpb.DescriptorProto{nested},
			Options: &descriptorpb.FileOptions{OptimizeFor: descriptorpb.FileOptions_LITE_RUNTIME.Enum()},
		},
	}
	for _, m := range msgs {
		want := viaProtojson(t, m)
		got, err := protoTerm(m.ProtoReflect())
		if err != nil {
			t.Errorf("%T %v: %v", m, m, err)
			continue
		}
		if got.Value.Compare(want) != 0 {
			t.Errorf("%T %v: protoTerm = %v, protojson = %v", m, m, got, want)
		}
	}
}

// TestProtoTermRejectsWhatProtojsonRejects: invalid UTF-8, out-of-range
// times and an unset Value fail both ways (the request is then denied).
func TestProtoTermRejectsWhatProtojsonRejects(t *testing.T) {
	badHeader := httpRequest("GET", "/", map[string]string{"x-bin": "\xff\xfe"})
	badKey := httpRequest("GET", "/", map[string]string{"\xff": "v"})
	for _, m := range []proto.Message{
		badHeader.Attributes, badKey.Attributes,
		&timestamppb.Timestamp{Seconds: math.MaxInt64}, &timestamppb.Timestamp{Nanos: -1},
		&durationpb.Duration{Seconds: 1, Nanos: -1}, &durationpb.Duration{Seconds: 1e12},
		&structpb.Value{}, structpb.NewNumberValue(math.NaN()),
	} {
		if _, err := protojson.Marshal(m); err == nil {
			t.Errorf("%T %v: protojson accepted it", m, m)
		}
		if _, err := protoTerm(m.ProtoReflect()); err == nil {
			t.Errorf("%T %v: protoTerm accepted it", m, m)
		}
	}
}

func TestJSONTermMatchesInterfaceToValue(t *testing.T) {
	var claims map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"iss":"i","exp":2000000000,"f":1.5e3,"neg":-1,"b":true,"n":null,
		"aud":["a","b"],"o":{"x":{"y":[1,{"z":false}]}},"e":{},"l":[],"s":"\u00e9\u2028"}`))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{claims, map[string]any{"float": 1.25, "int": 3, "strs": []string{"a"}}} {
		want, err := ast.InterfaceToValue(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsonTerm(v)
		if err != nil {
			t.Fatal(err)
		}
		if got.Value.Compare(want) != 0 {
			t.Errorf("jsonTerm = %v, want %v", got, want)
		}
	}
}

// referenceInput is the map builder buildInput replaced, kept as the
// reference for the input's shape.
func referenceInput(t *testing.T, req *authv3.CheckRequest, r *request, tok *token.Token) map[string]any {
	attrs := req.GetAttributes()
	values := func(v url.Values) map[string]any {
		out := map[string]any{}
		for k, vs := range v {
			l := []any{}
			for _, s := range vs {
				l = append(l, s)
			}
			out[k] = l
		}
		return out
	}
	strs := func(m map[string]string) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	peer := func(p *authv3.AttributeContext_Peer) map[string]any {
		out := map[string]any{"address": "", "port": 0, "principal": p.GetPrincipal()}
		switch a := p.GetAddress().GetAddress().(type) {
		case *corev3.Address_SocketAddress:
			out["address"] = a.SocketAddress.GetAddress()
			out["port"] = int(a.SocketAddress.GetPortValue())
		case *corev3.Address_Pipe:
			out["address"] = a.Pipe.GetPath()
		}
		return out
	}
	var pp []any
	for _, s := range strings.Split(strings.TrimLeft(r.path, "/"), "/") {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		pp = append(pp, s)
	}
	var attributes any
	b, err := protojson.Marshal(attrs)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&attributes); err != nil {
		t.Fatal(err)
	}
	input := map[string]any{
		"request": map[string]any{
			"method": r.method, "path": r.path, "raw_path": r.rawPath, "query": values(r.query), "headers": strs(r.headers),
			"host": r.host, "scheme": r.scheme, "protocol": r.protocol, "id": r.id,
		},
		"source":             peer(attrs.GetSource()),
		"destination":        peer(attrs.GetDestination()),
		"context_extensions": strs(attrs.GetContextExtensions()),
		"parsed_path":        pp,
		"parsed_query":       values(r.query),
		"version":            map[string]any{"ext_authz": "v3", "encoding": "protojson"},
		"attributes":         attributes,
	}
	if tok != nil {
		header := map[string]any{}
		for k, v := range tok.Header {
			header[k] = v
		}
		scopes := []any{}
		for _, s := range tok.Scopes {
			scopes = append(scopes, s)
		}
		input["token"] = map[string]any{"kind": tok.Kind, "issuer": tok.Issuer, "claims": tok.Claims, "header": header, "scopes": scopes}
	}
	return input
}

func TestInputMatchesReferenceBuilder(t *testing.T) {
	noScopes := *goodToken
	noScopes.Scopes = []string{}
	noScopes.Claims = map[string]any{"iss": "x", "nested": map[string]any{"l": []any{json.Number("1.5"), nil, true}}}
	for name, req := range fullRequests(t) {
		r, err := parseRequest(req, urlpath.Reject)
		if err != nil {
			continue // no HTTP attributes: never gets to the input
		}
		for _, tok := range []*token.Token{nil, goodToken, &noScopes} {
			want, err := ast.InterfaceToValue(referenceInput(t, req, r, tok))
			if err != nil {
				t.Fatal(err)
			}
			got, err := buildInput(req, r, tok, nil, allParts)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.Compare(want) != 0 {
				t.Errorf("%s (token %v): input =\n%v\nreference =\n%v", name, tok != nil, got, want)
			}
			// Decision.Input is the same document as Go values.
			back, err := ast.InterfaceToValue(inputMap(got))
			if err != nil || back.Compare(want) != 0 {
				t.Errorf("%s: inputMap does not round-trip: %v", name, err)
			}
		}
	}
}

// TestInputUserinfoLeavesSharedTokenTerm adds input.token.userinfo without
// touching the token's memoized term, which cache hits share.
func TestInputUserinfoLeavesSharedTokenTerm(t *testing.T) {
	req := httpRequest("GET", "/orders/1", bearer("x"))
	r, err := parseRequest(req, urlpath.Reject)
	if err != nil {
		t.Fatal(err)
	}
	// An introspected token memoizes its term as a verified one does.
	tok, err := token.Rules{Issuer: "https://id.example.com", Audiences: []string{"orders-api"}}.Opaque(
		map[string]any{"aud": "orders-api", "sub": "svc", "exp": json.Number("4000000000")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	info := map[string]any{"sub": "svc", "email": "svc@example.com", "groups": []any{"ops"}}
	with, err := buildInput(req, r, tok, info, inputParts{})
	if err != nil {
		t.Fatal(err)
	}
	without, err := buildInput(req, r, tok, nil, inputParts{})
	if err != nil {
		t.Fatal(err)
	}
	m := inputMap(with)["token"].(map[string]any)
	if got := m["userinfo"].(map[string]any); got["email"] != "svc@example.com" || m["kind"] != token.KindOpaque {
		t.Errorf("input.token = %v", m)
	}
	if _, ok := inputMap(without)["token"].(map[string]any)["userinfo"]; ok {
		t.Error("userinfo leaked into the token term shared with other requests")
	}
}

type inputLogger struct {
	needs *bool // nil: does not implement InputNeeder
	got   map[string]any
}

func (l *inputLogger) LogDecision(_ context.Context, d *Decision) { l.got = d.Input }

type needingLogger struct{ *inputLogger }

func (l needingLogger) NeedsInput() bool { return *l.needs }

func TestDecisionInputOnlyWhenNeeded(t *testing.T) {
	req := httpRequest("GET", "/orders", bearer("good"))
	v := fakeVerifier{tokens: map[string]*token.Token{"good": goodToken}}
	yes, no := true, false
	for _, tc := range []struct {
		name   string
		logger func(*inputLogger) DecisionLogger
		want   bool
	}{
		{"no logger", nil, false},
		{"logger without NeedsInput", func(l *inputLogger) DecisionLogger { return l }, true},
		{"NeedsInput true", func(l *inputLogger) DecisionLogger { l.needs = &yes; return needingLogger{l} }, true},
		{"NeedsInput false", func(l *inputLogger) DecisionLogger { l.needs = &no; return needingLogger{l} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &inputLogger{}
			cfg := Config{TokenRequired: true}
			if tc.logger != nil {
				cfg.DecisionLog = tc.logger(l)
			}
			a := newAuthorizer(t, cfg, v, &fakePolicy{fn: allowAll})
			d := a.Check(context.Background(), req)
			if !d.Allowed {
				t.Fatal(d.Reason)
			}
			if (d.Input != nil) != tc.want {
				t.Errorf("Check: Decision.Input set = %v, want %v", d.Input != nil, tc.want)
			}
			if tc.logger != nil && (l.got != nil) != tc.want {
				t.Errorf("logger saw input = %v, want %v", l.got != nil, tc.want)
			}
			if tc.want && d.Input["token"].(map[string]any)["claims"].(map[string]any)["exp"] != json.Number("2000000000") {
				t.Errorf("Decision.Input.token = %v", d.Input["token"])
			}
			// Explain always sets it.
			if d := a.Explain(context.Background(), req); d.Input == nil || d.Input["token"] == nil {
				t.Errorf("Explain: Decision.Input = %v", d.Input)
			}
		})
	}
}
