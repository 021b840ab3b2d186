// ebhelmrender -- renders a Helm chart the way `helm template` does, for a
// test suite on machines without a helm binary.
//
// Helm's template engine is Go's text/template with the sprig function
// library plus a handful of functions and objects of its own. This program
// re-creates the parts of Helm 3's engine (pkg/engine, pkg/chartutil) that
// charts commonly use, from Debian's Go packages, offline:
//
//   - .Values: the chart's values.yaml coalesced with -f files (later files
//     win; maps merge deeply; a null in an override deletes the key). Values
//     are read with YAML 1.1 rules (gopkg.in/yaml.v2, as Helm's
//     sigs.k8s.io/yaml does) and numbers become float64 as they do in Helm
//     (JSON round trip), so `off` is false and 1000000 prints as 1e+06 here
//     exactly as it would in a real install.
//   - .Release (Name, Namespace, Service, IsInstall, IsUpgrade, Revision),
//     .Chart (Chart.yaml with Helm's capitalised field names), .Template
//     (Name, BasePath), .Capabilities (KubeVersion, APIVersions.Has).
//   - Functions: sprig (minus env/expandenv, which Helm removes), include,
//     tpl, required, toYaml, mustToYaml, fromYaml, fromYamlArray, toJson,
//     fromJson, fromJsonArray, lookup (always empty, as in `helm template`).
//   - missingkey=zero and the removal of "<no value>" from the output
//     (--strict: missingkey=error, as Helm's strict lint mode).
//
// Usage:
//
//	ebhelmrender --chart DIR [-f values.yaml]... [--name R] [--namespace NS]
//	             [--notes] [--show-values] [--strict]
//
// Output: every rendered manifest as "---\n# Source: CHART/templates/F\n...",
// like `helm template`; --notes prints the rendered NOTES.txt instead;
// --show-values prints the coalesced values as JSON instead (what Helm
// validates against values.schema.json). Exit status 1 with the error on
// stderr when a template fails (required, fail, a parse error).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"text/template"

	sprig "github.com/Masterminds/sprig/v3"
	yaml2 "gopkg.in/yaml.v2"
	yaml3 "gopkg.in/yaml.v3"
)

// Chart mirrors helm.sh/helm/v3/pkg/chart.Metadata: templates see these
// field names (.Chart.Name, .Chart.AppVersion, ...).
type Chart struct {
	Name         string            `yaml:"name"`
	Home         string            `yaml:"home"`
	Sources      []string          `yaml:"sources"`
	Version      string            `yaml:"version"`
	Description  string            `yaml:"description"`
	Keywords     []string          `yaml:"keywords"`
	Maintainers  []Maintainer      `yaml:"maintainers"`
	Icon         string            `yaml:"icon"`
	APIVersion   string            `yaml:"apiVersion"`
	Condition    string            `yaml:"condition"`
	Tags         string            `yaml:"tags"`
	AppVersion   string            `yaml:"appVersion"`
	Deprecated   bool              `yaml:"deprecated"`
	Annotations  map[string]string `yaml:"annotations"`
	KubeVersion  string            `yaml:"kubeVersion"`
	Dependencies []interface{}     `yaml:"dependencies"`
	Type         string            `yaml:"type"`
}

type Maintainer struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
	URL   string `yaml:"url"`
}

type Release struct {
	Name      string
	Namespace string
	Revision  int
	IsUpgrade bool
	IsInstall bool
	Service   string
}

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (k KubeVersion) String() string { return k.Version }

// VersionSet answers .Capabilities.APIVersions.Has like Helm's.
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
}

type TemplateInfo struct {
	Name     string
	BasePath string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

/* ---------------------------------------------------------------- values */

// normalize turns what yaml.v2 decodes into what Helm holds after its
// YAML -> JSON -> Go round trip: map[string]interface{} and float64 numbers.
func normalize(v interface{}) interface{} {
	switch x := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = normalize(val)
		}
		return m
	case map[string]interface{}:
		for k, val := range x {
			x[k] = normalize(val)
		}
		return x
	case []interface{}:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	default:
		return v
	}
}

func readValues(file string) (map[string]interface{}, error) {
	data, err := ioutil.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw interface{}
	if err := yaml2.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := normalize(raw).(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: top level is not a mapping", file)
	}
	return m, nil
}

// mergeMaps: later -f files over earlier ones (Helm's cli/values.mergeMaps).
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if om, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(om, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce: user values over chart defaults (chartutil.coalesceTablesFullKey).
// A user null removes the key; maps merge; anything else the user set wins.
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{})
	for k, v := range defaults {
		out[k] = v
	}
	for k, uv := range user {
		if uv == nil {
			delete(out, k)
			continue
		}
		um, uok := uv.(map[string]interface{})
		dm, dok := out[k].(map[string]interface{})
		if uok && dok {
			out[k] = coalesce(um, dm)
		} else {
			if dok && !uok {
				fmt.Fprintf(os.Stderr, "warning: cannot overwrite table with non table for %s\n", k)
			}
			out[k] = uv
		}
	}
	// A null inside the defaults themselves is dropped too.
	for k, v := range out {
		if v == nil {
			delete(out, k)
		}
	}
	return out
}

/* ------------------------------------------------------------- functions */

// jsonish converts integral floats to int64 before YAML encoding so that
// toYaml prints 1000000 as Helm does (its toYaml goes through JSON).
func jsonish(v interface{}) interface{} {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
		return x
	case map[string]interface{}:
		m := make(map[string]interface{}, len(x))
		for k, val := range x {
			m[k] = jsonish(val)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(x))
		for i := range x {
			l[i] = jsonish(x[i])
		}
		return l
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice {
			// Go-typed maps/slices built with sprig (dict, list) round-trip
			// through JSON, exactly like Helm.
			b, err := json.Marshal(v)
			if err != nil {
				return v
			}
			var out interface{}
			if json.Unmarshal(b, &out) == nil {
				return jsonish(out)
			}
		}
		return v
	}
}

func toYAML(v interface{}) (string, error) {
	var buf bytes.Buffer
	enc := yaml3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(jsonish(v)); err != nil {
		return "", err
	}
	enc.Close()
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func fromYAML(s string) map[string]interface{} {
	var raw interface{}
	if err := yaml2.Unmarshal([]byte(s), &raw); err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	m, ok := normalize(raw).(map[string]interface{})
	if !ok {
		return map[string]interface{}{}
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var raw interface{}
	if err := yaml2.Unmarshal([]byte(s), &raw); err != nil {
		return []interface{}{err.Error()}
	}
	l, ok := normalize(raw).([]interface{})
	if !ok {
		return []interface{}{}
	}
	return l
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var l []interface{}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return []interface{}{err.Error()}
	}
	return l
}

func required(warn string, val interface{}) (interface{}, error) {
	if val == nil {
		return val, errors.New(warn)
	}
	if s, ok := val.(string); ok && s == "" {
		return val, errors.New(warn)
	}
	return val, nil
}

/* ---------------------------------------------------------------- engine */

type engine struct {
	root      *template.Template
	chartName string
	depth     int
}

const recursionMaxNums = 1000

func (e *engine) funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toYaml": func(v interface{}) string {
			s, err := toYAML(v)
			if err != nil {
				return ""
			}
			return s
		},
		"mustToYaml":    toYAML,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"required":      required,
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		// Bound late: they need the parsed template set.
		"include": func(string, interface{}) (string, error) { return "", nil },
		"tpl":     func(string, interface{}) (string, error) { return "", nil },
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func (e *engine) include(name string, data interface{}) (string, error) {
	if e.depth > recursionMaxNums {
		return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
	}
	e.depth++
	defer func() { e.depth-- }()
	var buf strings.Builder
	if err := e.root.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (e *engine) tpl(text string, data interface{}) (string, error) {
	t, err := e.root.Clone()
	if err != nil {
		return "", err
	}
	name := e.chartName + "/templates/_tpl"
	if m, ok := data.(map[string]interface{}); ok {
		if ti, ok := m["Template"].(TemplateInfo); ok {
			name = ti.Name
		}
	}
	t.Funcs(template.FuncMap{
		"include": e.include,
		"tpl":     e.tpl,
	})
	if _, err := t.New(name).Parse(text); err != nil {
		return "", fmt.Errorf("cannot parse template %q: %v", text, err)
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("error calling tpl: %v", err)
	}
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "Error: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	var files multiFlag
	chartDir := flag.String("chart", "", "chart directory")
	relName := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	notes := flag.Bool("notes", false, "render NOTES.txt (only) instead of the manifests")
	showValues := flag.Bool("show-values", false, "print the coalesced values as JSON and exit")
	isUpgrade := flag.Bool("is-upgrade", false, "render as an upgrade (.Release.IsUpgrade)")
	strict := flag.Bool("strict", false, "missingkey=error, as `helm lint --strict` renders")
	flag.Var(&files, "f", "values file (repeatable; later files win)")
	flag.Parse()
	if *chartDir == "" {
		die("--chart is required")
	}

	chartBytes, err := ioutil.ReadFile(filepath.Join(*chartDir, "Chart.yaml"))
	if err != nil {
		die("%v", err)
	}
	var chart Chart
	if err := yaml2.UnmarshalStrict(chartBytes, &chart); err != nil {
		die("Chart.yaml: %v", err)
	}
	if chart.Name == "" || chart.Version == "" || chart.APIVersion == "" {
		die("Chart.yaml: name, version and apiVersion are required")
	}

	defaults, err := readValues(filepath.Join(*chartDir, "values.yaml"))
	if err != nil {
		die("%v", err)
	}
	user := map[string]interface{}{}
	for _, f := range files {
		m, err := readValues(f)
		if err != nil {
			die("%v", err)
		}
		user = mergeMaps(user, m)
	}
	values := coalesce(user, defaults)
	if *showValues {
		b, _ := json.MarshalIndent(values, "", "  ")
		fmt.Println(string(b))
		return
	}

	e := &engine{chartName: chart.Name}
	missing := "missingkey=zero"
	if *strict {
		missing = "missingkey=error"
	}
	e.root = template.New("gotpl").Funcs(e.funcMap()).Option(missing)
	e.root.Funcs(template.FuncMap{"include": e.include, "tpl": e.tpl})

	tdir := filepath.Join(*chartDir, "templates")
	var names []string
	err = filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(*chartDir, p)
		name := path.Join(chart.Name, filepath.ToSlash(rel))
		src, err := ioutil.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := e.root.New(name).Parse(string(src)); err != nil {
			return fmt.Errorf("parse error in %q: %v", name, err)
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		die("%v", err)
	}
	sort.Strings(names)

	caps := Capabilities{
		KubeVersion: KubeVersion{Version: "v1.28.0", Major: "1", Minor: "28"},
		APIVersions: VersionSet{"v1", "apps/v1", "policy/v1", "batch/v1"},
	}
	rel := Release{Name: *relName, Namespace: *namespace, Revision: 1,
		IsInstall: !*isUpgrade, IsUpgrade: *isUpgrade, Service: "Helm"}

	var out strings.Builder
	var notesOut string
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		isNotes := base == "NOTES.txt"
		if isNotes != *notes {
			continue
		}
		data := map[string]interface{}{
			"Values":       values,
			"Release":      rel,
			"Chart":        chart,
			"Capabilities": caps,
			"Template":     TemplateInfo{Name: name, BasePath: path.Join(chart.Name, "templates")},
			"Files":        map[string]interface{}{},
		}
		var buf strings.Builder
		if err := e.root.ExecuteTemplate(&buf, name, data); err != nil {
			die("%v", err)
		}
		s := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			notesOut = s
			continue
		}
		if strings.TrimSpace(s) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(s))
	}
	if *notes {
		fmt.Print(notesOut)
		return
	}
	fmt.Print(out.String())
}
