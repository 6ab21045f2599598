use super::*;

/// A captured kubectl body and the JSON kubectl's `--dry-run=client -o json` prints for
/// the same command, from `e2e/tests/fixtures/protobuf/`.
fn capture(name: &str) -> (Vec<u8>, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
    let pb = std::fs::read(dir.join(format!("{name}.pb"))).unwrap();
    let js = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
    (pb, serde_json::from_slice(&js).unwrap())
}

/// The client's JSON without what the decoder leaves out on purpose: `status` (ignored on
/// create) and `creationTimestamp: null` (a zero time).
fn comparable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        if let Some(o) = v.as_object_mut() {
            if o.get("creationTimestamp") == Some(&Value::Null) {
                o.remove("creationTimestamp");
            }
            for x in o.values_mut() {
                strip(x);
            }
        } else if let Some(a) = v.as_array_mut() {
            a.iter_mut().for_each(strip);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    strip(&mut v);
    v
}

#[test]
fn every_kubectl_generator_body_decodes_to_the_json_kubectl_would_send() {
    // kubectl create namespace demo; deployment web --image=weir-demo:v1 --replicas=3
    // --port=8080; serviceaccount robot; configmap cfg --from-literal=a=1
    // --from-literal=b=two; secret generic s1 --from-literal=password=hunter2; secret
    // docker-registry reg --docker-server=x --docker-username=u --docker-password=p; service
    // clusterip web --tcp=80:8080; service nodeport np --tcp=80:8080 --node-port=30080;
    // service loadbalancer lb --tcp=80; service externalname en --external-name=example.com;
    // service clusterip hl --clusterip=None; role r1 --verb=get,list
    // --resource=pods,deployments.apps --resource-name=x; rolebinding rb1 --role=r1
    // --user=alice --serviceaccount=default:robot --group=g; clusterrole cr1 --verb=get
    // --non-resource-url=/metrics; clusterrolebinding crb1 --clusterrole=cr1 --user=bob
    for name in [
        "namespace",
        "deployment",
        "serviceaccount",
        "configmap",
        "secret",
        "secret_tls",
        "service",
        "svc_np",
        "svc_lb",
        "svc_en",
        "svc_headless",
        "role",
        "rolebinding",
        "clusterrole",
        "clusterrolebinding",
    ] {
        let (pb, want) = capture(name);
        let got = decode_object(&pb).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, comparable(want), "{name}");
    }
}

fn tag(n: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![
        u8::try_from(n << 3 | 2).unwrap(),
        u8::try_from(bytes.len()).unwrap(),
    ];
    out.extend_from_slice(bytes);
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let tm = [tag(1, api_version.as_bytes()), tag(2, kind.as_bytes())].concat();
    [MAGIC.to_vec(), tag(1, &tm), tag(2, raw)].concat()
}

#[test]
fn pointer_fields_keep_their_zero_values_and_others_drop_them() {
    // DeploymentSpec{replicas: 0 (pointer), minReadySeconds: 0, paused: false}
    let spec = [vec![0x08, 0x00], vec![0x28, 0x00], vec![0x38, 0x00]].concat();
    let raw = [tag(1, &tag(1, b"web")), tag(2, &spec)].concat();
    let v = decode_object(&envelope("apps/v1", "Deployment", &raw)).unwrap();
    assert_eq!(v["spec"], json!({"replicas": 0}));
    assert_eq!(v["metadata"], json!({"name": "web"}));
}

#[test]
fn negative_integers_and_named_target_ports_decode() {
    // ServicePort{port: -1 as a ten-byte varint, targetPort: "http"}
    let mut port = vec![0x18];
    port.extend_from_slice(&[0xff; 9]);
    port.push(0x01);
    let target = [vec![0x08, 0x01], tag(3, b"http")].concat();
    let sp = [port, tag(4, &target)].concat();
    let raw = [tag(1, &tag(1, b"s")), tag(2, &tag(1, &sp))].concat();
    let v = decode_object(&envelope("v1", "Service", &raw)).unwrap();
    assert_eq!(
        v["spec"]["ports"],
        json!([{"port": -1, "targetPort": "http"}])
    );
}

#[test]
fn an_unknown_kind_or_a_valued_unknown_field_is_an_error_never_dropped() {
    let raw = tag(1, &tag(1, b"x"));
    assert_eq!(
        decode_object(&envelope("batch/v1", "Job", &raw)),
        Err(DecodeError::UnknownKind("Job (batch/v1)".into()))
    );
    // PodSpec field 1 (volumes) carries a value: refused, not lost.
    let spec = tag(1, &tag(1, b"data"));
    let raw = [tag(1, &tag(1, b"p")), tag(2, &spec)].concat();
    assert_eq!(
        decode_object(&envelope("v1", "Pod", &raw)),
        Err(DecodeError::UnknownField {
            message: "PodSpec",
            field: 1
        })
    );
    // ...while a zero value of an unknown field is what Go always writes: skipped.
    let raw = [tag(1, &tag(1, b"p")), tag(2, &[0x0a, 0x00])].concat();
    assert!(decode_object(&envelope("v1", "Pod", &raw)).is_ok());
}

#[test]
fn garbage_and_cut_bodies_are_malformed() {
    for body in [
        &b"{}"[..],
        b"k8s\0",
        b"k8s\0\x0a\xff",
        b"k8s\0\x0a\x05\x0a\x02v1",
        b"k8s\0\x0f",
    ] {
        assert!(
            matches!(decode_object(body), Err(DecodeError::Malformed(_))),
            "{body:?}"
        );
    }
    let (pb, _) = capture("deployment");
    for cut in 5..pb.len() {
        // Any prefix either fails cleanly or decodes a smaller object: never a panic.
        let _ = decode_object(&pb[..cut]);
    }
}
