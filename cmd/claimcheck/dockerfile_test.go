package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/claimcheck/claimcheck/extauthz/config"
)

const repoRoot = "../.."

// dockerfile is the part of the Dockerfile the image depends on. There is no
// Docker engine here, so the test reads the Dockerfile and does what it says
// itself.
type dockerfile struct {
	stages     []dockerStage
	args       map[string]string // ARG defaults
	buildRun   string            // the RUN line with go build
	entrypoint []string
	cmd        []string
}

type dockerStage struct {
	image, name string
	copies      [][]string // sources and destination of each COPY
	user        string
	expose      []string
	workdir     string
}

// parseDockerfile reads the instructions of a Dockerfile: continuation lines
// joined, comments dropped.
func parseDockerfile(t *testing.T, p string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{args: map[string]string{}}
	var lines []string
	cont := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && cont == "") {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cont += s + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	for _, l := range lines {
		op, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		op = strings.ToUpper(op)
		if op == "FROM" {
			st := dockerStage{}
			f := strings.Fields(rest)
			st.image = f[0]
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			t.Fatalf("%s: %s before FROM", p, op)
		}
		st := &df.stages[len(df.stages)-1]
		switch op {
		case "ARG":
			k, v, ok := strings.Cut(rest, "=")
			if ok {
				var err error
				if v, err = strconv.Unquote(v); err != nil {
					t.Fatalf("ARG %s: give the default in double quotes", k)
				}
			}
			df.args[k] = v
		case "RUN":
			if strings.Contains(rest, "go build") {
				df.buildRun = rest
			}
		case "COPY":
			st.copies = append(st.copies, strings.Fields(rest))
		case "USER":
			st.user = rest
		case "EXPOSE":
			st.expose = append(st.expose, strings.Fields(rest)...)
		case "WORKDIR":
			st.workdir = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &df.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT must be exec form: %v", err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &df.cmd); err != nil {
				t.Fatalf("CMD must be exec form: %v", err)
			}
		case "ENV", "LABEL", "HEALTHCHECK", "SHELL", "ONBUILD", "VOLUME", "STOPSIGNAL", "ADD", "MAINTAINER":
			t.Fatalf("%s: this test does not model %s; extend it", p, op)
		}
	}
	return df
}

// shellWords splits a shell command line the way sh would for the simple
// lines a Dockerfile's RUN holds: quotes and ${VAR} expansion, nothing else.
func shellWords(t *testing.T, s string, vars map[string]string) []string {
	t.Helper()
	if strings.ContainsAny(s, "|&;<>`()") {
		t.Fatalf("RUN %q: more shell than this test models (one command, no operators)", s)
	}
	var words []string
	var cur strings.Builder
	inWord := false
	quote := rune(0)
	for _, r := range s {
		switch {
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case quote == 0 && (r == '"' || r == '\''):
			quote, inWord = r, true
		case r == quote:
			quote = 0
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("RUN %q: unterminated quote", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	for i, w := range words {
		words[i] = os.Expand(w, func(k string) string {
			v, ok := vars[k]
			if !ok {
				t.Fatalf("RUN uses $%s, which no ARG declares", k)
			}
			return v
		})
	}
	return words
}

// dockerignored reports whether .dockerignore keeps rel (slash-separated)
// out of the build context. It understands the pattern forms the shipped
// file uses and fails on any other, so the two cannot silently disagree.
func dockerignored(t *testing.T, patterns []string, rel string) bool {
	t.Helper()
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var match bool
		switch {
		case p == "*":
			match = true
		case strings.HasPrefix(p, "**/*") && !strings.Contains(p[4:], "/"):
			match = strings.HasSuffix(path.Base(rel), p[4:])
		case strings.HasPrefix(p, "**/") && strings.HasSuffix(p, "/") && !strings.ContainsAny(p[3:len(p)-1], "/*"):
			match = slices.Contains(strings.Split(path.Dir(rel), "/"), p[3:len(p)-1])
		case !strings.ContainsAny(p, "*?["):
			match = rel == strings.TrimSuffix(p, "/") || strings.HasPrefix(rel, strings.TrimSuffix(p, "/")+"/")
		default:
			t.Fatalf(".dockerignore pattern %q: not modelled by this test; extend dockerignored", p)
		}
		if match {
			ignored = !neg
		}
	}
	return ignored
}

// buildContext copies what the build stage's COPY lines take from the
// context (after .dockerignore) into a new directory, its WORKDIR.
func buildContext(t *testing.T, st dockerStage) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	dir := t.TempDir()
	copied := 0
	for _, c := range st.copies {
		if strings.HasPrefix(c[0], "--") {
			t.Fatalf("COPY %v in the build stage: flags are not modelled", c)
		}
		for _, src := range c[:len(c)-1] {
			err := filepath.WalkDir(filepath.Join(repoRoot, src), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, err := filepath.Rel(repoRoot, p)
				if err != nil {
					return err
				}
				if dockerignored(t, patterns, filepath.ToSlash(rel)) {
					return nil
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				dst := filepath.Join(dir, rel)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return err
				}
				copied++
				return os.WriteFile(dst, b, 0o644)
			})
			if err != nil {
				t.Fatalf("COPY %s: %v", src, err)
			}
		}
	}
	for _, f := range []string{"go.mod", "go.sum", "cmd/claimcheck/main.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("the build context lacks %s (%d files copied): check the COPY lines and .dockerignore", f, copied)
		}
	}
	return dir
}

// goModVersion is the go line of go.mod.
func goModVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "edit", "-json", filepath.Join(repoRoot, "go.mod")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Go string }
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m.Go
}

// TestDockerfileImage checks the image's shape: Go toolchain of go.mod, a
// distroless (or scratch) non-root final stage, the listeners' ports exposed,
// and claimcheck serving /etc/claimcheck/config.yaml by default.
func TestDockerfileImage(t *testing.T) {
	df := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	if len(df.stages) != 2 {
		t.Fatalf("want a build stage and a final stage, got %d stages", len(df.stages))
	}
	build, final := df.stages[0], df.stages[1]
	if want := "golang:" + goModVersion(t); build.image != want {
		t.Errorf("build stage FROM %s, want %s (go.mod's go version)", build.image, want)
	}
	if final.image != "gcr.io/distroless/static-debian12:nonroot" && final.image != "scratch" {
		t.Errorf("final stage FROM %s, want distroless static nonroot or scratch", final.image)
	}
	if u, _, _ := strings.Cut(final.user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q: must be a non-root user", final.user)
	}
	if len(final.copies) != 1 || final.copies[0][0] != "--from="+build.name {
		t.Fatalf("final stage COPY %v: want one COPY --from=%s of the binary", final.copies, build.name)
	}
	if dst := final.copies[0][len(final.copies[0])-1]; dst != "/usr/local/bin/claimcheck" {
		t.Errorf("binary copied to %s, want /usr/local/bin/claimcheck (on distroless's PATH, so ENTRYPOINT claimcheck finds it)", dst)
	}
	if !slices.Equal(df.entrypoint, []string{"claimcheck"}) || !slices.Equal(df.cmd, []string{"serve", "--config", "/etc/claimcheck/config.yaml"}) {
		t.Errorf("ENTRYPOINT %q CMD %q", df.entrypoint, df.cmd)
	}

	// The exposed ports are those of the container config's listeners.
	cfg, err := config.Load(filepath.Join(repoRoot, "examples/container/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, addr := range []string{cfg.Listen.GRPC, cfg.Listen.HTTP, cfg.Listen.Admin} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("examples/container/config.yaml listens on %q: %v", addr, err)
		}
		if host != "0.0.0.0" {
			t.Errorf("examples/container/config.yaml listens on %q: a container needs 0.0.0.0", addr)
		}
		ports = append(ports, port)
	}
	if _, adminPort, _ := net.SplitHostPort(config.DefaultAdmin); ports[2] != adminPort {
		t.Errorf("container admin port %s, default %s", ports[2], adminPort)
	}
	slices.Sort(ports)
	slices.Sort(final.expose)
	if !slices.Equal(ports, final.expose) {
		t.Errorf("EXPOSE %v, the container config listens on %v", final.expose, ports)
	}
}

// TestDockerfileBuildsAStaticBinary runs the Dockerfile's go build line as
// written, over exactly the files its COPY lines take, and checks the result:
// statically linked, stripped, reporting the VERSION build argument, and
// accepting the container config.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	df := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	build := df.stages[0]
	ctxDir := buildContext(t, build)
	const version = "v9.8.7-dockertest"
	vars := map[string]string{}
	for k, v := range df.args {
		vars[k] = v
	}
	vars["VERSION"] = version
	words := shellWords(t, df.buildRun, vars)

	var env []string
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env = append(env, words[0])
		words = words[1:]
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("go build runs with %v: CGO_ENABLED=0 is what makes it static", env)
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("RUN %q: want go build", df.buildRun)
	}
	args := slices.Clone(words[2:])
	bin := filepath.Join(t.TempDir(), "claimcheck")
	out := slices.Index(args, "-o")
	if out < 0 || out+1 >= len(args) {
		t.Fatalf("go build %v: no -o", args)
	}
	if want := build.workdir; want == "" || !slices.Contains(args, "-trimpath") {
		t.Errorf("go build %v in WORKDIR %q: want -trimpath and a WORKDIR", args, want)
	}
	args[out+1] = bin

	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = ctxDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	cmd.Env = append(cmd.Env, env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, b)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	for _, name := range []string{".symtab", ".debug_info"} {
		if f.Section(name) != nil {
			t.Errorf("the binary has %s: -ldflags -s -w did not apply", name)
		}
	}

	got, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("claimcheck version: %v", err)
	}
	if want := fmt.Sprintf("claimcheck %s\n", version); string(got) != want {
		t.Errorf("claimcheck version printed %q, want %q", got, want)
	}
	if b, err := exec.Command(bin, "validate", "--config", filepath.Join(repoRoot, "examples/container/config.yaml")).CombinedOutput(); err != nil {
		t.Errorf("claimcheck validate examples/container/config.yaml: %v\n%s", err, b)
	}
}
