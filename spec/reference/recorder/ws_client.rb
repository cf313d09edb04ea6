# frozen_string_literal: true

require "socket"
require "base64"
require "digest/sha1"

module Recorder
  # A tiny blocking queue with a timeout (Queue#pop(timeout:) is Ruby 3.2+).
  class EventQueue
    def initialize
      @items = []
      @mutex = Mutex.new
      @cond = ConditionVariable.new
    end

    def push(item)
      @mutex.synchronize do
        @items << item
        @cond.broadcast
      end
    end

    # Puts an item back at the head (a look-ahead that was not consumed).
    def unshift(item)
      @mutex.synchronize do
        @items.unshift(item)
        @cond.broadcast
      end
    end

    # Returns the next item, or nil after timeout seconds.
    def pop(timeout)
      deadline = now + timeout
      @mutex.synchronize do
        while @items.empty?
          left = deadline - now
          return nil if left <= 0
          @cond.wait(@mutex, left)
        end
        @items.shift
      end
    end

    def size
      @mutex.synchronize { @items.size }
    end

    def drain
      @mutex.synchronize { @items.slice!(0..) }
    end

    private

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end

  class ProtocolViolation < StandardError; end

  # A raw RFC 6455 client that sees everything: the HTTP response head and body of
  # the handshake, and every frame with its opcode, flags and close code. Server frames
  # are validated (unmasked, FIN set, RSV clear, minimal length encoding, known opcode);
  # any violation is reported as an event so the recorder fails loudly.
  class WsClient
    KEY = "dGhlIHNhbXBsZSBub25jZQ=="
    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    MASK = [0x37, 0xfa, 0x21, 0x3d].pack("C*").freeze

    attr_reader :name, :events, :response

    def initialize(name, host, port)
      @name = name
      @host = host
      @port = port
      @events = EventQueue.new
      @buf = "".b
      @closed_by_us = false
    end

    # headers: ordered [[name, value], ...] to send verbatim after the request line.
    # Returns {status:, reason:, headers: [[k, v]], body: String or nil}.
    def request(method, path, headers, websocket:)
      @sock = Socket.tcp(@host, @port, connect_timeout: 5)
      @sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      head = +"#{method} #{path} HTTP/1.1\r\n"
      headers.each { |k, v| head << "#{k}: #{v}\r\n" }
      head << "\r\n"
      @sock.write(head.b)
      status_line, resp_headers = read_head
      _, code, reason = status_line.split(" ", 3)
      status = Integer(code)
      body = nil
      if status == 101
        accept = header(resp_headers, "Sec-WebSocket-Accept")
        expected = Base64.strict_encode64(Digest::SHA1.digest(KEY + GUID))
        if websocket && accept != expected
          raise ProtocolViolation, "#{name}: bad Sec-WebSocket-Accept #{accept.inspect}"
        end
        @reader = Thread.new { read_frames }
      else
        body = read_body(resp_headers)
        @sock.close
      end
      @response = { status: status, reason: reason.to_s.strip, headers: resp_headers, body: body }
    end

    def header(headers, name)
      pair = headers.find { |k, _| k.casecmp?(name) }
      pair && pair[1]
    end

    def send_text(text)
      send_frame(0x1, text.b)
    end

    def send_binary(bytes)
      send_frame(0x2, bytes.b)
    end

    def send_ping(bytes)
      send_frame(0x9, bytes.b)
    end

    def send_close(code, reason = "")
      payload = code ? [code].pack("n") + reason.b : "".b
      send_frame(0x8, payload)
    end

    def send_raw(bytes)
      @sock.write(bytes.b)
    end

    # A masked client frame, as every client must send.
    def self.frame(opcode, payload, fin: true, mask: MASK)
      payload = payload.b
      out = [(fin ? 0x80 : 0) | opcode].pack("C")
      mbit = mask ? 0x80 : 0
      len = payload.bytesize
      out << if len < 126
               [mbit | len].pack("C")
             elsif len < 65_536
               [mbit | 126, len].pack("Cn")
             else
               [mbit | 127, len].pack("CQ>")
             end
      if mask
        out << mask
        bytes = payload.bytes
        m = mask.bytes
        payload = bytes.each_with_index.map { |b, i| b ^ m[i % 4] }.pack("C*")
      end
      out << payload
      out
    end

    def send_frame(opcode, payload)
      @sock.write(self.class.frame(opcode, payload))
    end

    def close
      @closed_by_us = true
      @sock&.close unless @sock&.closed?
    rescue IOError, SystemCallError
      nil
    ensure
      @reader&.join(1)
    end

    private

    def fill(min)
      while @buf.bytesize < min
        chunk = @sock.readpartial(65_536)
        @buf << chunk.b
      end
    end

    def take(n)
      fill(n)
      @buf.slice!(0, n)
    end

    def read_head
      until (idx = @buf.index("\r\n\r\n"))
        @buf << @sock.readpartial(65_536).b
      end
      head = @buf.slice!(0, idx + 4)
      lines = head.force_encoding("UTF-8").split("\r\n")
      status = lines.shift
      headers = lines.map { |l| k, v = l.split(":", 2); [k.strip, v.to_s.strip] }
      [status, headers]
    end

    def read_body(headers)
      te = header(headers, "Transfer-Encoding")
      cl = header(headers, "Content-Length")
      body = "".b
      if te&.casecmp?("chunked")
        loop do
          fill_line
          size_line = @buf.slice!(0, @buf.index("\r\n") + 2)
          size = size_line.to_i(16)
          if size.zero?
            fill_line
            @buf.slice!(0, @buf.index("\r\n") + 2)
            break
          end
          body << take(size)
          take(2)
        end
      elsif cl
        body << take(Integer(cl))
      else
        begin
          loop { @buf << @sock.readpartial(65_536).b }
        rescue EOFError, IOError, SystemCallError
          nil
        end
        body << @buf.slice!(0..)
      end
      body.force_encoding("UTF-8")
    end

    def fill_line
      @buf << @sock.readpartial(65_536).b until @buf.index("\r\n")
    end

    def read_frames
      message = nil
      loop do
        b0, b1 = take(2).unpack("CC")
        fin = b0 & 0x80 != 0
        rsv = b0 & 0x70
        opcode = b0 & 0x0f
        masked = b1 & 0x80 != 0
        len = b1 & 0x7f
        if len == 126
          len = take(2).unpack1("n")
          violation("non-minimal 16-bit length #{len}") if len < 126
        elsif len == 127
          len = take(8).unpack1("Q>")
          violation("non-minimal 64-bit length #{len}") if len < 65_536
        end
        violation("masked server frame") if masked
        violation("RSV bits set (#{rsv})") if rsv != 0
        mask = masked ? take(4) : nil
        payload = take(len)
        payload = payload.bytes.each_with_index.map { |b, i| b ^ mask.getbyte(i % 4) }.pack("C*") if mask
        case opcode
        when 0x1, 0x2
          violation("fragmented server message (opcode #{opcode})") unless fin
          if opcode == 0x1
            text = payload.force_encoding("UTF-8")
            violation("invalid UTF-8 in text frame") unless text.valid_encoding?
            @events.push([:text, text])
          else
            @events.push([:binary, payload])
          end
        when 0x0
          violation("continuation frame from server")
        when 0x8
          code = payload.bytesize >= 2 ? payload.unpack1("n") : nil
          reason = payload.bytesize > 2 ? payload.byteslice(2..).force_encoding("UTF-8") : ""
          @events.push([:close, code, reason])
        when 0x9
          @events.push([:ping, payload])
        when 0xA
          @events.push([:pong, payload])
        else
          violation("unknown opcode #{opcode}")
        end
      end
    rescue EOFError, IOError, Errno::ECONNRESET, Errno::EPIPE
      @events.push([:eof])
    rescue ProtocolViolation => e
      @events.push([:violation, e.message])
    rescue StandardError => e
      @events.push([:violation, "#{e.class}: #{e.message}"]) unless @closed_by_us
    end

    def violation(msg)
      raise ProtocolViolation, "#{name}: #{msg}"
    end
  end
end
