package cn.fieldgrid.tests

import org.junit.runner.JUnitCore
import org.junit.runner.Result
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import kotlin.system.exitProcess

/** Runs the Kotlin tests and prints one plain `kotlin: N passed, N failed` line. */
fun main() {
    val core = JUnitCore()
    core.addListener(
        object : RunListener() {
            override fun testFailure(failure: Failure) {
                println("FAILED ${failure.description.displayName}: ${failure.message}")
                println(failure.trace.lineSequence().take(12).joinToString("\n"))
            }

            override fun testFinished(description: org.junit.runner.Description) {
                println("ran ${description.displayName}")
            }
        },
    )
    val result: Result = core.run(BindingsTest::class.java, KeysTest::class.java)
    val failed = result.failureCount
    println("kotlin: ${result.runCount - failed} passed, $failed failed")
    TestServer.stop()
    exitProcess(if (failed == 0 && result.runCount > 0) 0 else 1)
}
