fn main() -> anyhow::Result<()> {
    anyhow::bail!("livetranslate-agent: not implemented yet")
}
