package idtoken

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestRenderAndLookup(t *testing.T) {
	payload := `{
		"sub": "u1", "n": 1732400000, "big": 1.7324e+09, "frac": 0.5, "tiny": 1.5e-3, "neg": -2E2,
		"ok": true, "no": false, "nothing": null,
		"groups": ["a", "b"], "mixed": [1, true, "x"], "nested": [{"a": 1}],
		"address": {"country": "DE", "geo": {"lat": 52.5}},
		"data.userKey": "flat", "data": {"userKey": "nested"},
		"empty": []
	}`
	dec := json.NewDecoder(bytes.NewReader([]byte(payload)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	c := newClaims(m, nil, 0)
	tests := []struct {
		name, want string
		found      bool
	}{
		{"sub", "u1", true},
		{"n", "1732400000", true},
		{"big", "1732400000", true},
		{"frac", "0.5", true},
		{"tiny", "0.0015", true},
		{"neg", "-200", true},
		{"ok", "true", true},
		{"no", "false", true},
		{"nothing", "", true},
		{"groups", "a,b", true},
		{"mixed", "1,true,x", true},
		{"nested", `[{"a":1}]`, true},
		{"address", `{"country":"DE","geo":{"lat":52.5}}`, true},
		{"address.country", "DE", true},
		{"address.geo.lat", "52.5", true},
		{"data.userKey", "flat", true},
		{"empty", "", true},
		{"address.missing", "", false},
		{"missing", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, found := lookupPath(c.m, tc.name)
			if found != tc.found {
				t.Fatalf("found = %v, want %v", found, tc.found)
			}
			if got := Render(v); got != tc.want {
				t.Fatalf("Render = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlainNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "12": "12", "1e3": "1000", "1.25E+2": "125", "-1.5e-2": "-0.015",
		"123.456e1": "1234.56", "5e-1": "0.5", "1e999": "1e999",
	} {
		if got := plainNumber(json.Number(in)); got != want {
			t.Errorf("plainNumber(%s) = %s, want %s", in, got, want)
		}
	}
}
