package extauthz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file converts values straight to OPA ast terms, without a JSON round
// trip or reflection:
//
//   - protoTerm renders a protobuf message the way protojson.Marshal (default
//     options) does, so input.attributes stays opa-envoy-plugin compatible:
//     lowerCamelCase JSON names, only populated fields, 64-bit integers as
//     strings, enums by name, bytes as base64, maps as objects, and the
//     well-known types (Timestamp, Duration, Struct, Value, ListValue,
//     wrappers, Empty) in their JSON forms. Any and FieldMask, which Envoy
//     rarely sends, go through protojson itself. TestProtoTermMatchesProtojson
//     pins the equivalence.
//   - jsonTerm converts decoded JSON (token claims and header: string,
//     json.Number, bool, nil, []any, map[string]any).
//
// Terms are immutable once built, so key terms are shared between inputs.

// fieldNames caches the key term of each field's JSON name.
var fieldNames sync.Map // protoreflect.FieldDescriptor → *ast.Term

func fieldName(fd protoreflect.FieldDescriptor) *ast.Term {
	if t, ok := fieldNames.Load(fd); ok {
		return t.(*ast.Term)
	}
	t, _ := fieldNames.LoadOrStore(fd, ast.StringTerm(fd.JSONName()))
	return t.(*ast.Term)
}

// protoTerm returns m as protojson.Marshal would render it, as a term.
func protoTerm(m protoreflect.Message) (*ast.Term, error) {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		return timestampTerm(m)
	case "google.protobuf.Duration":
		return durationTerm(m)
	case "google.protobuf.Struct":
		fd := m.Descriptor().Fields().ByNumber(1)
		return mapTerm(m.Get(fd).Map(), fd)
	case "google.protobuf.ListValue":
		fd := m.Descriptor().Fields().ByNumber(1)
		return listTerm(m.Get(fd).List(), fd)
	case "google.protobuf.Value":
		fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("kind"))
		if fd == nil {
			return nil, errors.New("google.protobuf.Value: none of the oneof fields is set")
		}
		if fd.Number() == 2 { // number_value
			if f := m.Get(fd).Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("google.protobuf.Value.number_value: invalid %v value", f)
			}
		}
		return singularTerm(m.Get(fd), fd)
	case "google.protobuf.BoolValue", "google.protobuf.Int32Value", "google.protobuf.Int64Value",
		"google.protobuf.UInt32Value", "google.protobuf.UInt64Value", "google.protobuf.FloatValue",
		"google.protobuf.DoubleValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		fd := m.Descriptor().Fields().ByNumber(1)
		return singularTerm(m.Get(fd), fd)
	case "google.protobuf.Any", "google.protobuf.FieldMask":
		return protojsonTerm(m)
	}
	var pairs [][2]*ast.Term
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		var t *ast.Term
		switch {
		case fd.IsList():
			t, err = listTerm(v.List(), fd)
		case fd.IsMap():
			t, err = mapTerm(v.Map(), fd)
		default:
			t, err = singularTerm(v, fd)
		}
		if err != nil {
			return false
		}
		pairs = append(pairs, [2]*ast.Term{fieldName(fd), t})
		return true
	})
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(ast.NewObject(pairs...)), nil
}

func listTerm(l protoreflect.List, fd protoreflect.FieldDescriptor) (*ast.Term, error) {
	terms := make([]*ast.Term, l.Len())
	for i := range terms {
		t, err := singularTerm(l.Get(i), fd)
		if err != nil {
			return nil, err
		}
		terms[i] = t
	}
	return ast.NewTerm(ast.NewArray(terms...)), nil
}

func mapTerm(m protoreflect.Map, fd protoreflect.FieldDescriptor) (*ast.Term, error) {
	pairs := make([][2]*ast.Term, 0, m.Len())
	keys := make([]ast.Term, m.Len()) // one allocation for all the key terms
	vd := fd.MapValue()
	var err error
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		ks := k.String()
		if !utf8.ValidString(ks) {
			err = fmt.Errorf("%s: invalid UTF-8 in map key", fd.FullName())
			return false
		}
		var t *ast.Term
		if t, err = singularTerm(v, vd); err != nil {
			return false
		}
		kt := &keys[len(pairs)]
		kt.Value = ast.String(ks)
		pairs = append(pairs, [2]*ast.Term{kt, t})
		return true
	})
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(ast.NewObject(pairs...)), nil
}

// singularTerm converts one non-repeated value of field fd.
func singularTerm(v protoreflect.Value, fd protoreflect.FieldDescriptor) (*ast.Term, error) {
	if !v.IsValid() {
		return ast.NullTerm(), nil
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return ast.InternedTerm(v.Bool()), nil
	case protoreflect.StringKind:
		s := v.String()
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("field %s contains invalid UTF-8", fd.FullName())
		}
		return ast.StringTerm(s), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return ast.InternedTerm(int(v.Int())), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return ast.InternedTerm(int(v.Uint())), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return ast.StringTerm(strconv.FormatInt(v.Int(), 10)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return ast.StringTerm(strconv.FormatUint(v.Uint(), 10)), nil
	case protoreflect.FloatKind:
		return floatTerm(v.Float(), 32), nil
	case protoreflect.DoubleKind:
		return floatTerm(v.Float(), 64), nil
	case protoreflect.BytesKind:
		return ast.StringTerm(base64.StdEncoding.EncodeToString(v.Bytes())), nil
	case protoreflect.EnumKind:
		if fd.Enum().FullName() == "google.protobuf.NullValue" {
			return ast.NullTerm(), nil
		}
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return ast.StringTerm(string(ev.Name())), nil
		}
		return ast.InternedTerm(int(v.Enum())), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoTerm(v.Message())
	}
	return nil, fmt.Errorf("%s has unknown kind %v", fd.FullName(), fd.Kind())
}

// floatTerm formats f as protojson does (encoding/json's rules; NaN and
// infinities as strings).
func floatTerm(f float64, bits int) *ast.Term {
	switch {
	case math.IsNaN(f):
		return ast.StringTerm("NaN")
	case math.IsInf(f, 1):
		return ast.StringTerm("Infinity")
	case math.IsInf(f, -1):
		return ast.StringTerm("-Infinity")
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b := strconv.AppendFloat(nil, f, format, -1, bits)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return ast.NumberTerm(json.Number(b))
}

// Ranges protojson accepts for Timestamp and Duration.
const (
	minTimestampSeconds = -62135596800 // 0001-01-01T00:00:00Z
	maxTimestampSeconds = 253402300799 // 9999-12-31T23:59:59Z
	maxDurationSeconds  = 315576000000
	nanosPerSecond      = 1_000_000_000
)

func secondsNanos(m protoreflect.Message) (int64, int64) {
	fds := m.Descriptor().Fields()
	return m.Get(fds.ByNumber(1)).Int(), m.Get(fds.ByNumber(2)).Int()
}

// trimNanos drops trailing zero groups so the fraction has 0, 3, 6 or 9 digits.
func trimNanos(x string) string {
	x = strings.TrimSuffix(x, "000")
	x = strings.TrimSuffix(x, "000")
	return strings.TrimSuffix(x, ".000")
}

func timestampTerm(m protoreflect.Message) (*ast.Term, error) {
	secs, nanos := secondsNanos(m)
	if secs < minTimestampSeconds || secs > maxTimestampSeconds {
		return nil, fmt.Errorf("google.protobuf.Timestamp: seconds out of range %v", secs)
	}
	if nanos < 0 || nanos > nanosPerSecond {
		return nil, fmt.Errorf("google.protobuf.Timestamp: nanos out of range %v", nanos)
	}
	t := time.Unix(secs, nanos).UTC()
	return ast.StringTerm(trimNanos(t.Format("2006-01-02T15:04:05.000000000")) + "Z"), nil
}

func durationTerm(m protoreflect.Message) (*ast.Term, error) {
	secs, nanos := secondsNanos(m)
	if secs < -maxDurationSeconds || secs > maxDurationSeconds {
		return nil, fmt.Errorf("google.protobuf.Duration: seconds out of range %v", secs)
	}
	if nanos < -nanosPerSecond || nanos > nanosPerSecond {
		return nil, fmt.Errorf("google.protobuf.Duration: nanos out of range %v", nanos)
	}
	if (secs > 0 && nanos < 0) || (secs < 0 && nanos > 0) {
		return nil, errors.New("google.protobuf.Duration: signs of seconds and nanos do not match")
	}
	sign := ""
	if secs < 0 || nanos < 0 {
		sign, secs, nanos = "-", -secs, -nanos
	}
	return ast.StringTerm(trimNanos(fmt.Sprintf("%s%d.%09d", sign, secs, nanos)) + "s"), nil
}

// protojsonTerm renders m with protojson itself, for the rare types
// protoTerm does not convert natively.
func protojsonTerm(m protoreflect.Message) (*ast.Term, error) {
	b, err := protojson.Marshal(m.Interface())
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(v), nil
}

// jsonTerm converts a decoded JSON value (json.Number numbers) to a term.
// Other Go types, which decoded JSON does not hold, take the slow generic
// path.
func jsonTerm(v any) (*ast.Term, error) {
	switch x := v.(type) {
	case nil:
		return ast.NullTerm(), nil
	case string:
		return ast.StringTerm(x), nil
	case bool:
		return ast.InternedTerm(x), nil
	case json.Number:
		return ast.NumberTerm(x), nil
	case []any:
		terms := make([]*ast.Term, len(x))
		for i, e := range x {
			t, err := jsonTerm(e)
			if err != nil {
				return nil, err
			}
			terms[i] = t
		}
		return ast.NewTerm(ast.NewArray(terms...)), nil
	case map[string]any:
		pairs := make([][2]*ast.Term, 0, len(x))
		for k, e := range x {
			t, err := jsonTerm(e)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, [2]*ast.Term{ast.StringTerm(k), t})
		}
		return ast.NewTerm(ast.NewObject(pairs...)), nil
	}
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(val), nil
}
