package api

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
)

// TestOpenAPICoverage: every registered route is documented and every documented route is
// registered (same method, same path template).
func TestOpenAPICoverage(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for _, rt := range s.routes {
		registered = append(registered, rt.method+" "+rt.pattern)
	}
	sort.Strings(documented)
	sort.Strings(registered)
	if diff := cmp.Diff(registered, documented); diff != "" {
		t.Errorf("routes (-registered +documented in docs/openapi.yaml):\n%s", diff)
	}
}

// TestOpenAPICopyInSync: the embedded copy is docs/openapi.yaml (run go generate).
func TestOpenAPICopyInSync(t *testing.T) {
	want, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, openapiYAML) {
		t.Error("internal/api/openapi.yaml differs from docs/openapi.yaml: run go generate ./internal/api")
	}
}

// TestOpenAPIServed: the JSON form is served, valid, and keeps every $ref resolvable.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, Config{})
	var doc map[string]any
	e.do("GET", "/api/v1/openapi.json", "", nil).want(t, 200, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
	b, _ := json.Marshal(doc)
	comps := doc["components"].(map[string]any)
	for _, ref := range refs(string(b)) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
		sec, ok := comps[parts[0]].(map[string]any)
		if !ok || sec[parts[1]] == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	}
	// Response codes are strings in JSON (YAML may read them as integers).
	paths := doc["paths"].(map[string]any)
	if _, ok := paths["/healthz"].(map[string]any)["get"].(map[string]any)["responses"].(map[string]any)["200"]; !ok {
		t.Error("responses of /healthz lack \"200\"")
	}
}

func refs(s string) []string {
	var out []string
	for {
		i := strings.Index(s, `"$ref":"`)
		if i < 0 {
			break
		}
		s = s[i+8:]
		j := strings.IndexByte(s, '"')
		if !slices.Contains(out, s[:j]) {
			out = append(out, s[:j])
		}
		s = s[j:]
	}
	return out
}

// schemaDoc is the part of the OpenAPI document the schema tests read.
type schemaDoc struct {
	Components struct {
		Schemas map[string]struct {
			Required   []string       `yaml:"required"`
			Properties map[string]any `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func openAPISchemas(t *testing.T) schemaDoc {
	t.Helper()
	var doc schemaDoc
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPISchemasMatchWire: the JSON keys the server writes for networks, peers, tokens
// and problems are exactly the documented properties, and every required one is present.
func TestOpenAPISchemasMatchWire(t *testing.T) {
	doc := openAPISchemas(t)
	e := newEnv(t, Config{})
	n := e.network() // dual-stack with endpoint: every optional network field but routes/dns
	mtu := 1400
	var full map[string]any
	e.do("PATCH", "/api/v1/networks/"+n.Name, e.admin, wire.NetworkUpdate{MTU: &mtu, Routes: &[]string{"0.0.0.0/0"}, DNS: &[]string{"198.51.100.1"}}).want(t, 200, &full)
	var peer, tokens, problem map[string]any
	p := e.peer(n.Name)
	e.do("GET", "/api/v1/networks/"+n.Name+"/peers/"+urlKey(p.PublicKey), e.admin, nil).want(t, 200, &peer)
	var created struct {
		Token map[string]any `json:"token"`
	}
	e.do("POST", "/api/v1/tokens", e.admin, wire.TokenCreate{Name: "n", Roles: []wirefleet.Role{"viewer"}, Networks: []string{n.Name}}).want(t, 201, &created)
	tokens = created.Token
	e.do("GET", "/api/v1/networks/nosuch", e.admin, nil).want(t, 404, &problem)
	for name, obj := range map[string]map[string]any{"Network": full, "Peer": peer, "Token": tokens, "Problem": problem} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("schema %s missing", name)
		}
		var got, documented []string
		for k := range obj {
			got = append(got, k)
		}
		for k := range s.Properties {
			documented = append(documented, k)
		}
		sort.Strings(got)
		sort.Strings(documented)
		if diff := cmp.Diff(documented, got); diff != "" {
			t.Errorf("%s: keys (-documented +served):\n%s", name, diff)
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				t.Errorf("%s: required %q not served", name, r)
			}
		}
	}
}
