//! kube-dc library
