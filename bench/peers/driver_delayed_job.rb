# delayed_job's driver (Debian's ruby-delayed-job-active-record and ruby-pg):
# the same actions as bench/peers/driver.py, with ActiveRecord on the
# system's own database. Job number n inserts n into bench_done.
require "json"
require "uri"
require "active_record"
require "delayed_job"
require "delayed_job_active_record"

url = URI.parse(ENV.fetch("BENCH_DATABASE_URL"))
ActiveRecord::Base.establish_connection(
  adapter: "postgresql", host: url.host, port: url.port || 5432,
  username: url.user, password: url.password, database: url.path.delete_prefix("/")
)
ActiveRecord::Base.logger = nil
Delayed::Worker.backend = :active_record
# Its defaults otherwise: 5 s sleep_delay, read_ahead 5, failed jobs kept.
Delayed::Worker.logger = Logger.new(nil)

InsertRow = Struct.new(:n) do
  def perform
    ActiveRecord::Base.connection.execute("INSERT INTO bench_done (n) VALUES (#{Integer(n)})")
  end
end

def enqueue_one(n)
  Delayed::Job.enqueue(InsertRow.new(n))
end

case ARGV[0]
when "setup"
  ActiveRecord::Schema.define do
    create_table :delayed_jobs, force: true do |t|
      t.integer :priority, default: 0, null: false
      t.integer :attempts, default: 0, null: false
      t.text :handler, null: false
      t.text :last_error
      t.datetime :run_at
      t.datetime :locked_at
      t.datetime :failed_at
      t.string :locked_by
      t.string :queue
      t.timestamps null: true
    end
    add_index :delayed_jobs, [:priority, :run_at], name: "delayed_jobs_priority"
  end
when "reset"
  ActiveRecord::Base.connection.execute("TRUNCATE delayed_jobs")
when "enqueue"
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  Integer(ARGV[1]).times { |n| enqueue_one(n) }
  puts JSON.generate(seconds: Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
when "enqueue-stdin"
  $stdout.sync = true
  puts "ready"
  $stdin.each_line do |line|
    enqueue_one(Integer(line))
    puts format("%.6f", Time.now.to_f)
  end
when "workoff"
  # What `rake jobs:workoff` does: work until the queue is empty, then exit.
  Delayed::Worker.new(exit_on_complete: true).start
when "work"
  Delayed::Worker.new.start
else
  abort "unknown action #{ARGV[0].inspect}"
end
