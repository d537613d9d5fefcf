mod common;
use common::*;
#[test]
fn probe() {
    each_backend(|s| {
        let a = s.admin();
        let r = a.raw("POST", "/v1/tenants", Some(br#"["zz"]"#), &[]);
        println!("{} {} {}", s.backend.as_str(), r.status, r.text);
        let r = a.raw("PATCH", "/v1/tenants/zz", Some(br#"[1, "Z"]"#), &[]);
        println!("{} {} {}", s.backend.as_str(), r.status, r.text);
    });
}
