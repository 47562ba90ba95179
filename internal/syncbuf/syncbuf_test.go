package syncbuf

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBuffer_ConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				n, err := b.Write([]byte("ab"))
				assert.NoError(t, err)
				assert.Equal(t, 2, n)
				_ = b.String() // reads race with writes without the mutex
			}
		})
	}
	wg.Wait()
	assert.Equal(t, strings.Repeat("ab", 800), b.String())
}
