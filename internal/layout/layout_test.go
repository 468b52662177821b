package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wirefleet/wirefleet"

// concrete adapters: packages that talk to the outside world through one technology.
var adapters = []string{
	"internal/store/sqlite",
	"internal/store/postgres",
	"internal/wgdev/kernel",
	"internal/wgdev/userspace",
	"internal/wgdev/attach",
	"internal/openvpn",
}

// composition roots (and the device selector) may wire concrete adapters.
var roots = []string{
	"cmd/",
	"internal/server",
	"internal/gateway",
	"internal/e2e",
	"internal/wgdev/auto",
	"internal/enabler",
	"internal/autowg",
	"internal/mesh",
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p
	}
	return pkgs
}

func under(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func isStd(path string) bool { return !strings.Contains(strings.SplitN(path, "/", 2)[0], ".") }

func TestDependencyRules(t *testing.T) {
	pkgs := listPackages(t)
	for _, imp := range pkgs[""].Imports {
		if !isStd(imp) {
			t.Errorf("root package imports %s: the domain imports only the standard library", imp)
		}
	}
	for path, p := range pkgs {
		for _, imp := range p.Imports {
			rel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			if !strings.HasPrefix(imp, module) {
				continue
			}
			for _, a := range adapters {
				if !under(rel, a) || under(path, a) {
					continue
				}
				allowed := strings.HasSuffix(path, "test") // conformance suites run adapters
				for _, r := range roots {
					allowed = allowed || under(path, r)
				}
				if !allowed {
					t.Errorf("%s imports adapter %s: only composition roots wire adapters", path, rel)
				}
			}
		}
	}
	for path, p := range pkgs {
		if !under(path, "internal/gateway") && !under(path, "internal/compat/vpndaemon") && !under(path, "internal/reconcile") {
			continue
		}
		for _, d := range p.Deps {
			if strings.HasPrefix(d, module+"/internal/store") {
				t.Errorf("%s depends on %s: the gateway path never links the store", path, d)
			}
		}
	}
}
