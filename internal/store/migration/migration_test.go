package migration

import (
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []Migration
		wantErr bool
	}{
		{
			name: "ordered",
			fsys: fstest.MapFS{
				"m/0002_more.sql": file("B"),
				"m/0001_init.sql": file("A"),
			},
			want: []Migration{{1, "init", "A"}, {2, "more", "B"}},
		},
		{name: "gap", fsys: fstest.MapFS{"m/0001_a.sql": file(""), "m/0003_c.sql": file("")}, wantErr: true},
		{name: "starts at 2", fsys: fstest.MapFS{"m/0002_a.sql": file("")}, wantErr: true},
		{name: "duplicate", fsys: fstest.MapFS{"m/0001_a.sql": file(""), "m/0001_b.sql": file("")}, wantErr: true},
		{name: "stray file", fsys: fstest.MapFS{"m/0001_a.sql": file(""), "m/README": file("")}, wantErr: true},
		{name: "empty", fsys: fstest.MapFS{"m": {Mode: fs.ModeDir}}, wantErr: true},
		{name: "missing dir", fsys: fstest.MapFS{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.fsys, "m")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load: err = %v, want error: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}
