// Package packermanifest reads the JSON that Packer's "manifest" post-processor writes, to find
// the image a build made: the template name of a vsphere-clone build, the "region:ami-id" of an
// amazon-ebs build. kubeup up --packer-manifest uses it so that a freshly baked image is used
// without copying its name into the cluster config by hand.
package packermanifest
