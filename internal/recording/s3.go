package recording

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config names an S3-compatible bucket.
type S3Config struct {
	// Endpoint is https://host[:port]; plain http is refused: casts hold
	// everything typed into a shell, passwords included.
	Endpoint string
	Bucket   string
	// Prefix is put before every object name, e.g. "sessiongate/".
	Prefix string
	// AccessKey and SecretKey authenticate the gateway.
	AccessKey, SecretKey string
	// Region, if the store needs one.
	Region string
	// CA verifies the store's TLS certificate; nil means system roots.
	CA []byte
}

// S3 is a Sink in an S3-compatible object store, through minio-go.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string
}

// NewS3 checks the configuration; it does not reach the store.
func NewS3(c S3Config) (*S3, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("the S3 endpoint must be https://host[:port], got %q", c.Endpoint)
	}
	if c.Bucket == "" || c.AccessKey == "" || c.SecretKey == "" {
		return nil, errors.New("the S3 sink needs a bucket, an access key and a secret key")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if len(c.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CA) {
			return nil, errors.New("the S3 CA holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Secure: true, Transport: tr, Region: c.Region,
	})
	if err != nil {
		return nil, err
	}
	return &S3{client: client, bucket: c.Bucket, prefix: c.Prefix}, nil
}

func (s *S3) key(id string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", err
	}
	return s.prefix + id + ".cast", nil
}

// Create spools the cast to a local temporary file and uploads it on Close:
// the stream never waits on the network, and an object is whole or absent.
func (s *S3) Create(ctx context.Context, id string) (io.WriteCloser, error) {
	key, err := s.key(id)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "sessiongate-cast-*")
	if err != nil {
		return nil, err
	}
	return &upload{File: f, ctx: context.WithoutCancel(ctx), s: s, key: key}, nil
}

// uploadTimeout bounds the upload of one cast at a stream's end.
const uploadTimeout = 2 * time.Minute

type upload struct {
	*os.File
	ctx context.Context
	s   *S3
	key string
}

func (u *upload) Close() error {
	defer os.Remove(u.File.Name())
	defer u.File.Close()
	size, err := u.File.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := u.File.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// A store that hangs must not hold the stream's end (and its audit
	// record) forever.
	ctx, cancel := context.WithTimeout(u.ctx, uploadTimeout)
	defer cancel()
	_, err = u.s.client.PutObject(ctx, u.s.bucket, u.key, u.File, size, minio.PutObjectOptions{ContentType: "application/x-asciicast"})
	if err != nil {
		return fmt.Errorf("uploading to bucket %s: %w", u.s.bucket, err)
	}
	return nil
}

// Open reads a cast from the store.
func (s *S3) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	key, err := s.key(id)
	if err != nil {
		return nil, err
	}
	o, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	// GetObject is lazy: Stat says whether it is there.
	if _, err := o.Stat(); err != nil {
		_ = o.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return o, nil
}

// Check asks the store whether the bucket is there and reachable.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("the S3 store takes no writes: %s", strings.TrimSpace(err.Error()))
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist", s.bucket)
	}
	return nil
}

// List finds the session's casts under the prefix.
func (s *S3) List(ctx context.Context, session string) ([]Info, error) {
	var out []Info
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + session + "-"}) {
		if o.Err != nil {
			return nil, o.Err
		}
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, s.prefix), ".cast")
		if sess, valid := SessionOf(id); ok && valid && sess == session {
			out = append(out, Info{ID: id, Session: session, Size: o.Size, Time: timeOf(id)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
