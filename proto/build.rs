//! Compiles `proto/cordon/v1/cordon.proto` with protox (pure Rust, no protoc needed) and
//! generates the prost messages and tonic services into OUT_DIR.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "proto/cordon/v1/cordon.proto";
    println!("cargo:rerun-if-changed={file}");
    let descriptors = protox::compile([file], ["proto"])?;
    tonic_prost_build::configure()
        .type_attribute(
            ".cordon.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
