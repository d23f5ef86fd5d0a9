package awstest

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

type bucket struct {
	name        string
	publicBlock *publicAccessBlock
	encryption  string // default SSE algorithm, "" if none set
	objects     map[string]*object
}

type object struct {
	data []byte
	sse  string
	meta map[string]string
	etag string
}

type publicAccessBlock struct {
	XMLName               xml.Name `xml:"PublicAccessBlockConfiguration"`
	BlockPublicAcls       bool     `xml:"BlockPublicAcls"`
	IgnorePublicAcls      bool     `xml:"IgnorePublicAcls"`
	BlockPublicPolicy     bool     `xml:"BlockPublicPolicy"`
	RestrictPublicBuckets bool     `xml:"RestrictPublicBuckets"`
}

type encryptionConfig struct {
	XMLName xml.Name `xml:"ServerSideEncryptionConfiguration"`
	Rules   []struct {
		Default struct {
			Algorithm string `xml:"SSEAlgorithm"`
		} `xml:"ApplyServerSideEncryptionByDefault"`
	} `xml:"Rule"`
}

// s3 serves S3's REST-XML protocol, path-style: /bucket and /bucket/key.
func (s *Server) s3(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	name, key, _ := strings.Cut(path, "/")
	sub := r.URL.Query()
	op := s3Operation(r.Method, key, sub)
	s.calls = append(s.calls, op)
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "%s<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>", xml.Header, code, msg, s.requestID())
		}
	}
	if e, ok := s.failures[op]; ok {
		fail(e.Status, e.Code, e.Message)
		return
	}
	if r.Header.Get("Content-Encoding") == "aws-chunked" {
		fail(http.StatusNotImplemented, "NotImplemented", "the stand-in does not decode aws-chunked bodies")
		return
	}
	b := s.buckets[name]
	if b == nil && op != "CreateBucket" {
		fail(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch op {
	case "HeadBucket":
		w.WriteHeader(http.StatusOK)
	case "CreateBucket":
		if b != nil {
			fail(http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
			return
		}
		s.buckets[name] = &bucket{name: name, objects: map[string]*object{}}
		w.Header().Set("Location", "/"+name)
	case "GetPublicAccessBlock":
		if b.publicBlock == nil {
			fail(http.StatusNotFound, "NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")
			return
		}
		out, _ := xml.Marshal(b.publicBlock)
		w.Write(out)
	case "PutPublicAccessBlock":
		var p publicAccessBlock
		if err := xml.Unmarshal(body, &p); err != nil {
			fail(http.StatusBadRequest, "MalformedXML", err.Error())
			return
		}
		b.publicBlock = &p
	case "GetBucketEncryption":
		if b.encryption == "" {
			fail(http.StatusNotFound, "ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found")
			return
		}
		fmt.Fprintf(w, "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>%s</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>", b.encryption)
	case "PutBucketEncryption":
		var c encryptionConfig
		if err := xml.Unmarshal(body, &c); err != nil || len(c.Rules) == 0 {
			fail(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed")
			return
		}
		b.encryption = c.Rules[0].Default.Algorithm
	case "PutObject":
		sum := md5.Sum(body)
		o := &object{data: body, sse: r.Header.Get("X-Amz-Server-Side-Encryption"), meta: map[string]string{}, etag: `"` + hex.EncodeToString(sum[:]) + `"`}
		if o.sse == "" {
			o.sse = b.encryption
		}
		for k, v := range r.Header {
			if m, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-"); ok {
				o.meta[m] = v[0]
			}
		}
		b.objects[key] = o
		w.Header().Set("ETag", o.etag)
	case "HeadObject":
		o := b.objects[key]
		if o == nil {
			fail(http.StatusNotFound, "NotFound", "Not Found")
			return
		}
		for k, v := range o.meta {
			w.Header().Set("X-Amz-Meta-"+k, v)
		}
		w.Header().Set("ETag", o.etag)
		w.Header().Set("Content-Length", fmt.Sprint(len(o.data)))
		if o.sse != "" {
			w.Header().Set("X-Amz-Server-Side-Encryption", o.sse)
		}
	case "DeleteObject":
		delete(b.objects, key)
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(http.StatusNotImplemented, "NotImplemented", "the stand-in does not implement "+op)
	}
}

func s3Operation(method, key string, sub map[string][]string) string {
	has := func(k string) bool { _, ok := sub[k]; return ok }
	switch {
	case key == "" && method == http.MethodHead:
		return "HeadBucket"
	case key == "" && has("publicAccessBlock"):
		return map[string]string{"GET": "GetPublicAccessBlock", "PUT": "PutPublicAccessBlock"}[method]
	case key == "" && has("encryption"):
		return map[string]string{"GET": "GetBucketEncryption", "PUT": "PutBucketEncryption"}[method]
	case key == "" && method == http.MethodPut:
		return "CreateBucket"
	case key != "":
		return map[string]string{"PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject", "GET": "GetObject"}[method]
	}
	return method + " bucket"
}
