package taskriver

import (
	"testing"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadRecord(t *testing.T) {
	const record = `{"attempt":1,"worker":"w1","status":"STOPPED","exit_code":"canceled","run":"{}"}`
	cases := []struct {
		name     string
		metadata string
		want     bool
	}{
		{"empty", `{}`, false},
		{"other keys", `{"tenant":"a","river:log":[]}`, false},
		{"record", `{"output":` + record + `}`, true},
		{"key spelled with escapes", `{"\u006futput":` + record + `}`, true},
		{"output of another shape", `{"output":{"rows":3}}`, false},
		{"output of another type", `{"output":"text"}`, false},
		{"not JSON", `{"output":`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := readRecord(&rivertype.JobRow{Metadata: []byte(c.metadata)})
			if !c.want {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			assert.Equal(t, "w1", got.Worker)
			assert.Equal(t, "{}", got.Run)
		})
	}
}
