# frozen_string_literal: true

# bin/bench's channel (profile `bench`): one stream per `stream` param, nothing else.
# ferrocable config (docs/benchmarks/ferrocable-bench.toml):
#   [channels.BenchChannel]  streams = ["bench_{params.stream}"], require_params = ["stream"]
class BenchChannel < ApplicationCable::Channel
  def subscribed
    if params[:stream].present?
      stream_from "bench_#{params[:stream]}"
    else
      reject
    end
  end

  def unsubscribed
  end
end
