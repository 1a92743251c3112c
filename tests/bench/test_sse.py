from bench.sse import SseParser


def test_event_split_across_reads_is_stamped_with_the_read_that_completed_it():
    parser = SseParser()
    assert parser.feed(b'event: node.started\ndata: {"a"', 1.0) == []
    events = parser.feed(b": 1}\nid: 7\n\n", 2.0)
    assert [(e.name, e.data, e.event_id, e.recv_ms) for e in events] == [
        ("node.started", '{"a": 1}', "7", 2.0)
    ]


def test_comments_and_keepalive_padding_are_not_events():
    parser = SseParser()
    events = parser.feed(b":" + b" " * 2048 + b"\n\nevent: stream-open\ndata:\n\n", 1.0)
    assert [(e.name, e.data) for e in events] == [("stream-open", "")]


def test_crlf_lines_and_multiline_data_are_joined():
    parser = SseParser()
    events = parser.feed(b"data: one\r\ndata: two\r\n\r\n", 1.0)
    assert [(e.name, e.data) for e in events] == [("message", "one\ntwo")]
