package localkube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/gateway"
)

// ApplyFile creates every object of a multi-document YAML file, the way
// `kubectl create -f` would; objects that exist already are left alone.
// namespace, when set, replaces the namespace of namespaced objects.
func ApplyFile(ctx context.Context, c client.Client, path, namespace string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return Apply(ctx, c, path, data, namespace)
}

// Apply is ApplyFile for YAML in memory; name says where it came from in
// errors.
func Apply(ctx context.Context, c client.Client, path string, data []byte, namespace string) error {
	decode := serializer.NewCodecFactory(gateway.Scheme()).UniversalDeserializer().Decode
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if blank(doc) {
			continue
		}
		obj, _, err := decode(doc, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		o := obj.(client.Object)
		if namespace != "" && o.GetNamespace() != "" {
			o.SetNamespace(namespace)
		}
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: creating %s %s: %w", path, obj.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
}

// blank: a document of nothing but comments and space, which kubectl skips.
func blank(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}
