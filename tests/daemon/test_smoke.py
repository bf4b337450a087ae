async def test_ask_streams_and_stores(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    result = await daemon.ask("What is 1+1?", askId="a1")
    assert result["answer"] == "You asked: What is 1+1?. I see 0 earlier messages."
    deltas = daemon.deltas_of("a1")
    assert "".join(d["delta"] for d in deltas) == result["answer"]
    session = await daemon.run("deskmate.getSession", {})
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"]
